// Package cli holds the commands of the inspect tool, so that they can be
// embedded in another program or run in tests.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"text/tabwriter"
	"time"

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
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "inspect:", err)
	var u usageError
	if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") ||
		strings.HasPrefix(err.Error(), "unknown flag") || strings.Contains(err.Error(), "arg(s)") {
		return 2
	}
	return 1
}

// usageError is a command used wrongly.
type usageError struct{ error }

// New returns the root command with every subcommand.
func New() *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:           "inspect",
		Short:         "Look inside a mosaik network or data directory",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVar(&o.url, "url", "nats://127.0.0.1:4222", "NATS server of the network")
	f.StringVar(&o.network, "network", "mosaik", "network name (subject namespace)")
	f.BoolVar(&o.json, "json", false, "print JSON instead of tables")
	f.DurationVar(&o.timeout, "timeout", 2*time.Second, "how long to wait for answers")
	f.StringVar(&o.secretHex, "secret", "", "secret of a sealed collection, 64 hex digits (visible in the process list: prefer --secret-file or "+envSecret+")")
	f.StringVar(&o.secretFile, "secret-file", "", "file holding the secret of a sealed collection, 64 hex digits")
	root.AddCommand(commands(o)...)
	return root
}

// commandSet lists the subcommands; each file adds its own in init.
var commandSet []func(*options) *cobra.Command

func commands(o *options) []*cobra.Command {
	out := make([]*cobra.Command, 0, len(commandSet))
	for _, mk := range commandSet {
		out = append(out, mk(o))
	}
	return out
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
