// Command pload is ringmaster's load generator and latency meter for CPG
// (cpgbench/pload style). The engine lives in bench/.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{Use: "pload", Short: "CPG load generator and latency meter", SilenceUsage: true, SilenceErrors: true}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "pload:", err)
		os.Exit(1)
	}
}
