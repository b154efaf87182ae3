package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"ringmaster/crm/cib"
	"ringmaster/stonithd"
	"ringmaster/stonithd/agent"
)

// stonith fence and history ask ringd (crm_live.go); list and levels read a
// CIB file and work without a daemon.
func newStonithCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stonith",
		Short: "Fence nodes, the fencing history, fence devices and topology",
		Long: `Fence a node and read the cluster's fencing history (from ringd), or show
the fence devices and fencing levels of a CIB file as the fencer interprets
them (pcmk_host_list/map/check, pcmk_host_argument, priorities).`,
	}
	cmd.AddCommand(newStonithFenceCmd(g), newStonithHistoryCmd(g), newStonithListCmd(g), newStonithLevelsCmd(g))
	return cmd
}

func loadCIBFile(path string) (*cib.CIB, *cib.Element, error) {
	if path == "" {
		return nil, nil, errors.New("--cib FILE is required (reading the live CIB needs ringd)")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	root, err := cib.ParseElement(f)
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
		Short: "List the fence devices of a CIB file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadCIBFile(cibFile)
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
	cmd.Flags().StringVar(&cibFile, "cib", "", "CIB XML file")
	cmd.Flags().StringVar(&agentDir, "agent-dir", agent.DefaultDir, "directory of the fence_* agents")
	cmd.Flags().BoolVar(&noMeta, "no-metadata", false, "do not run the agents for their meta-data (defaults then assume every action and a port argument)")
	return cmd
}

func newStonithLevelsCmd(g *globals) *cobra.Command {
	var cibFile string
	cmd := &cobra.Command{
		Use:   "levels",
		Short: "List the fencing topology of a CIB file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, root, err := loadCIBFile(cibFile)
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
	cmd.Flags().StringVar(&cibFile, "cib", "", "CIB XML file")
	return cmd
}
