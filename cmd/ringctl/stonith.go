package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/clients/crm"
	"ringmaster/crm/cib"
	"ringmaster/stonithd"
	"ringmaster/stonithd/agent"
)

// stonith fence and history ask ringd (crm_live.go); list and levels read
// the cluster's CIB from ringd, or a CIB file without a daemon.
func newStonithCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stonith",
		Short: "Fence nodes, the fencing history, fence devices and topology",
		Long: `Fence a node and read the cluster's fencing history (from ringd), and show
the fence devices and fencing levels of the cluster's CIB (or of a CIB file
with --cib) as the fencer interprets them (pcmk_host_list/map/check,
pcmk_host_argument, priorities).`,
	}
	cmd.AddCommand(newStonithFenceCmd(g), newStonithHistoryCmd(g), newStonithListCmd(g), newStonithLevelsCmd(g))
	return cmd
}

// loadCIBFile reads the CIB from path, or from ringd at socket when path
// is empty (the cluster's live CIB).
func loadCIBFile(path, socket string) (*cib.CIB, *cib.Element, error) {
	var data []byte
	var err error
	if path == "" {
		path = "the cluster's CIB"
		err = ipcStore{socket: socket}.with(func(ctx context.Context, c *crm.Client) (err error) {
			data, err = c.CIBXML(ctx)
			return err
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%w (or --cib FILE to read a CIB file)", err)
		}
	} else if data, err = os.ReadFile(path); err != nil {
		return nil, nil, err
	}
	root, err := cib.ParseElement(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := cib.FromElement(root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, root, nil
}

func newStonithListCmd(g *globals) *cobra.Command {
	var cibFile, agentDir string
	var noMeta bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the fence devices (of the running cluster, or of a CIB file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadCIBFile(cibFile, g.socket)
			if err != nil {
				return err
			}
			var mdFor func(string) *stonithd.Metadata
			if !noMeta {
				ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
				defer cancel()
				mdFor = agent.New(agent.Config{Dir: agentDir}).MetadataFunc(ctx)
			}
			devs, errs := stonithd.DevicesFromCIB(c, mdFor, stonithd.DeviceOptions{})
			for _, err := range errs {
				fmt.Fprintln(cmd.ErrOrStderr(), "error:", err)
			}
			info := stonithd.DescribeDevices(devs)
			if g.json {
				err = printJSON(cmd.OutOrStdout(), info)
			} else {
				err = stonithd.WriteDevices(cmd.OutOrStdout(), info)
			}
			if err == nil && len(errs) > 0 {
				err = exitError{code: 1}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cibFile, "cib", "", "read this CIB XML file instead of the cluster's")
	cmd.Flags().StringVar(&agentDir, "agent-dir", agent.DefaultDir, "directory of the fence_* agents")
	cmd.Flags().BoolVar(&noMeta, "no-metadata", false, "do not run the agents for their meta-data (defaults then assume every action and a port argument)")
	return cmd
}

func newStonithLevelsCmd(g *globals) *cobra.Command {
	var cibFile string
	cmd := &cobra.Command{
		Use:   "levels",
		Short: "List the fencing topology (of the running cluster, or of a CIB file)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, root, err := loadCIBFile(cibFile, g.socket)
			if err != nil {
				return err
			}
			topo, err := stonithd.TopologyFromElement(root)
			if err != nil {
				return err
			}
			devs, _ := stonithd.DevicesFromCIB(c, nil, stonithd.DeviceOptions{})
			verr := topo.Validate(devs)
			info := stonithd.DescribeTopology(topo)
			if g.json {
				err = printJSON(cmd.OutOrStdout(), info)
			} else {
				err = stonithd.WriteLevels(cmd.OutOrStdout(), info)
			}
			if err == nil && verr != nil {
				err = verr
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cibFile, "cib", "", "read this CIB XML file instead of the cluster's")
	return cmd
}
