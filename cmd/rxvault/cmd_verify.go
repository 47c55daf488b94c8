package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rxvault/rxvault/internal/keys"
	"github.com/rxvault/rxvault/internal/store"
	"github.com/rxvault/rxvault/pitr"
)

type verifyOptions struct {
	json       bool
	store      string
	identities []string
}

var errProblems = errors.New("verify found problems (see above)")

func newVerifyCommand(g *globals) *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check every object in the stores: structure, hashes, chains, backups",
		Long: `Verify every segment and base backup in every store (or --store): structure,
digests, hash links and chain continuity, backups against their manifests. No
private key is needed for that. With --identity it also decrypts and decodes
every payload.

Exit status 1 on any problem, including a gap between chains.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.loadConfig(cmd)
			if err != nil {
				return usage(err)
			}
			var ids []*keys.Identity
			if len(opts.identities) > 0 {
				if ids, err = loadIdentities(opts.identities); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			log := g.logger(cfg.Log)
			urls := cfg.Archive.Stores
			if opts.store != "" {
				urls = []string{opts.store}
			}
			var reports []*pitr.Report
			problems := 0
			for _, u := range urls {
				var st store.Store
				if opts.store != "" {
					st, err = g.readStore(ctx, &cfg, u, log)
				} else {
					st, err = g.openStore(ctx, &cfg, u, log)
				}
				if err != nil {
					return err
				}
				rep, err := pitr.Verify(ctx, st, ids)
				if err != nil {
					return fmt.Errorf("verify %s: %w", st, err)
				}
				problems += rep.Problems
				reports = append(reports, rep)
			}
			if opts.json {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			} else {
				printReports(g, reports)
			}
			if problems > 0 {
				return errProblems
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print JSON")
	cmd.Flags().StringVar(&opts.store, "store", "", "verify only this store URL")
	cmd.Flags().StringArrayVar(&opts.identities, "identity", nil, "identity file: also decrypt and decode every payload (repeatable)")
	return cmd
}

func printReports(g *globals, reports []*pitr.Report) {
	p := func(format string, args ...any) { fmt.Fprintf(g.stdout, format+"\n", args...) }
	for _, r := range reports {
		how := "structure, digests and links (no key)"
		if r.Decrypted {
			how = "structure, digests, links and every payload decrypted"
		}
		p("%s: checked %s", r.Store, how)
		for _, s := range r.Sources {
			segs, ok, txns := 0, 0, uint64(0)
			for _, c := range s.Chains {
				segs += c.Segments
				ok += c.Verified
				txns += c.Txns
			}
			good := 0
			for _, b := range s.Backups {
				if b.Verified {
					good++
				}
			}
			p("  %s: %d chains, %d/%d segments verified (%d transactions), %d/%d base backups verified",
				s.Source, len(s.Chains), ok, segs, txns, good, len(s.Backups))
			for _, pr := range s.Problems {
				p("  PROBLEM %s", pr)
			}
			for _, n := range s.Notes {
				p("  note: %s", n)
			}
		}
		if r.Problems == 0 {
			p("  OK")
		}
	}
}
