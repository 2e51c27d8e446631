// Command composecheck loads a Compose file with compose-go, the loader docker compose itself uses,
// and prints the normalized project as JSON: relative bind-mount sources resolved against the file's
// folder, short port syntax expanded to {host_ip, published, target, protocol}, and every error
// docker compose would report (schema, interpolation, consistency) reported here too, with exit code 1.
//
//	go run . ../docker-compose.yaml
//
// Built by the stack tool (devtools/stack) into .cache/tools/, cached like the other Go tools.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: composecheck COMPOSE_FILE")
		os.Exit(2)
	}
	// The same options docker compose applies to `-f FILE`: the file's folder is the working
	// directory, the environment and a .env file there interpolate it, paths are resolved.
	options, err := cli.NewProjectOptions(
		[]string{os.Args[1]},
		cli.WithOsEnv,
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithResolvedPaths(true),
	)
	if err == nil {
		err = load(options)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func load(options *cli.ProjectOptions) error {
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	encoded, err := project.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(encoded))
	return err
}
