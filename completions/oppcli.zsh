#compdef oppcli

_oppcli_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _OPPCLI_COMPLETE=complete_zsh oppcli)
}

if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _oppcli_completion "$@"
else
  compdef _oppcli_completion oppcli
fi
