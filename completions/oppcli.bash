_oppcli_completion() {
    local cur words cword
    if declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
        _get_comp_words_by_ref -n =: cur words cword
    else
        cur=${COMP_WORDS[COMP_CWORD]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
    fi
    local IFS=$'\n' prefix="" reply quoted
    local -a replies
    replies=( $( env COMP_WORDS="${words[*]}" \
                     COMP_CWORD=$cword \
                     _OPPCLI_COMPLETE=complete_bash $1 ) )
    case $cur in *[=:]*) prefix=${cur%"${cur##*[=:]}"} ;; esac
    COMPREPLY=()
    for reply in "${replies[@]}"; do
        quoted=${reply#"$prefix"}
        if [[ $quoted == *[!A-Za-z0-9,._+:@%/=-]* ]]; then
            printf -v quoted '%q' "$quoted"
        fi
        COMPREPLY+=("$quoted")
    done
    return 0
}

complete -o default -F _oppcli_completion oppcli
