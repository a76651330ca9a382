package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"
)

// completionFlag is the flag urfave/cli answers with completions: the
// subcommands, or the flags when the word typed starts with "-".
const completionFlag = "--generate-bash-completion"

// bashCompletion asks the agent itself for each completion, so it stays
// true to the binary installed.
const bashCompletion = `# bash completion for the magekube agent: source <(agent completion bash)
_magekube_agent() {
  local cur="${COMP_WORDS[COMP_CWORD]}" words
  local args=("${COMP_WORDS[@]:1:COMP_CWORD-1}")
  [[ $cur == -* ]] && args+=("$cur")
  words=$("${COMP_WORDS[0]}" "${args[@]}" ` + completionFlag + ` 2>/dev/null)
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _magekube_agent agent
`

// zshCompletion is the bash one through zsh's bashcompinit.
const zshCompletion = `# zsh completion for the magekube agent: source <(agent completion zsh)
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

func completionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Load it in the shell, for example:
  source <(agent completion bash)      # bash, in ~/.bashrc
  source <(agent completion zsh)       # zsh, in ~/.zshrc
  agent completion fish | source       # fish`,
		Action: func(c *cli.Context) error {
			return printCompletion(c.App, c.Args().First(), stdout)
		},
	}
}

func printCompletion(app *cli.App, shell string, out io.Writer) error {
	switch shell {
	case "bash":
		_, err := io.WriteString(out, bashCompletion)
		return err
	case "zsh":
		_, err := io.WriteString(out, zshCompletion)
		return err
	case "fish":
		script, err := app.ToFishCompletion()
		if err != nil {
			return fmt.Errorf("fish completion: %w", err)
		}
		_, err = io.WriteString(out, script)
		return err
	}
	return fmt.Errorf("completion: want bash, zsh or fish, not %q", shell)
}
