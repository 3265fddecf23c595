#compdef oppcli

_oppcli_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _OPPCLI_COMPLETE=complete_zsh oppcli)
}

compdef _oppcli_completion oppcli
