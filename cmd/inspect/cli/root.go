// Package cli holds the commands of the inspect tool, so that they can be
// embedded in another program or run in tests.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"
)

// options are the flags every command shares.
type options struct {
	url     string
	network string
	json    bool
	timeout time.Duration

	secretHex, secretFile string // a group secret, for dump and watch of sealed collections
}

// Main runs inspect with args and returns the process exit code: 0 on
// success, 1 when the command failed, 2 when it was used wrongly.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return Run(ctx, args, stdout, stderr)
}

// Run is Main with a context: commands that follow a network until
// interrupted end when ctx does.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := New()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "inspect:", err)
	}
	return exitCode(err)
}

// New returns the root command with every subcommand.
func New() *cobra.Command {
	o := &options{}
	root := parent(&cobra.Command{
		Use:           "inspect",
		Short:         "Look inside a mosaik network or data directory",
		SilenceUsage:  true,
		SilenceErrors: true,
	})
	// Every command's flag errors are usage errors.
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	f := root.PersistentFlags()
	f.StringVar(&o.url, "url", "nats://127.0.0.1:4222", "NATS server of the network")
	f.StringVar(&o.network, "network", "mosaik", "network name (subject namespace)")
	f.BoolVar(&o.json, "json", false, "print JSON instead of tables")
	f.DurationVar(&o.timeout, "timeout", 2*time.Second, "how long to wait for answers")
	f.StringVar(&o.secretHex, "secret", "", "secret of a sealed collection, 64 hex digits (visible in the process list: prefer --secret-file or "+envSecret+")")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the secret of a sealed collection, 64 hex digits")
	root.AddCommand(
		// A live network (status.go, collection.go, operator.go, backup.go).
		peersCmd(o),
		groupsCmd(o),
		groupCmd(o),
		dumpCmd(o),
		watchCmd(o),
		recoverCmd(o),
		removeMemberCmd(o),
		snapshotCmd(o),
		// A data directory, offline (log.go).
		newLogCommand(o, vfs.Default),
	)
	return root
}

// parent makes cmd, a command that groups others, refuse an unknown
// subcommand as wrong usage, and print its help when given none. (Cobra
// answers an unknown subcommand of a command other than the root with its
// help and success.)
func parent(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		err := fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			err = fmt.Errorf("%w; did you mean %s?", err, strings.Join(s, " or "))
		}
		return usageError{err}
	}
	return cmd
}

// exactArgs and noArgs are cobra's, whose errors are usage errors.
func exactArgs(n int) cobra.PositionalArgs { return usageArgs(cobra.ExactArgs(n)) }

var noArgs = usageArgs(cobra.NoArgs)

func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// table writes rows under headers, aligned in columns.
func table(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
