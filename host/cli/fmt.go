package cli

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/nemoclave/nemoclave/blueprints"
	"github.com/spf13/cobra"
)

type fmtOptions struct {
	check, diff, write, recursive bool
}

func newFmtCmd(g *Globals) *cobra.Command {
	var o fmtOptions
	cmd := &cobra.Command{
		Use:   "fmt [--check] [--diff] [--write] [--recursive] [paths...]",
		Short: "Rewrite blueprint files in canonical HCL style",
		Long: `Fmt rewrites *.hcl files in canonical style (the same as hclwrite.Format).
Paths may be files or directories (default: the current directory);
directories are searched for *.hcl files, and with --recursive their
subdirectories too (except testdata, vendor, node_modules and hidden
directories, unless given directly). "-" reads standard input and writes standard output.
Flags may also be written with one dash (-check, -diff, -write).

  --check  list files that are not formatted and exit 1 if there are any;
           does not write unless --write is given too
  --diff   print a unified diff of the changes; does not write unless
           --write is given too
  --write  write the formatted files (the default without --check/--diff)`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("write") {
				o.write = !o.check && !o.diff
			}
			return runFmt(cmd, g, o, args)
		},
	}
	cmd.Flags().BoolVar(&o.check, "check", false, "exit 1 if any file is not formatted")
	cmd.Flags().BoolVar(&o.diff, "diff", false, "print diffs of the formatting changes")
	cmd.Flags().BoolVar(&o.write, "write", true, "write the formatted result to the files")
	cmd.Flags().BoolVar(&o.recursive, "recursive", false, "also format files in subdirectories")
	allowSingleDash(cmd, "check", "diff", "write", "recursive", "home", "output")
	return cmd
}

func runFmt(cmd *cobra.Command, _ *Globals, o fmtOptions, paths []string) error {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if len(paths) == 0 {
		paths = []string{"."}
	}
	files := map[string]*hcl.File{}
	var diags hcl.Diagnostics
	unformatted := 0
	for _, p := range paths {
		if p == "-" {
			src, err := io.ReadAll(cmd.InOrStdin())
			if err != nil {
				return err
			}
			res, d := blueprints.Format("<stdin>.hcl", src)
			if d.HasErrors() {
				diags = append(diags, d...)
				files["<stdin>.hcl"] = &hcl.File{Bytes: src}
				continue
			}
			if _, err := out.Write(res); err != nil {
				return err
			}
			continue
		}
		names, err := fmtTargets(p, o.recursive)
		if err != nil {
			return err
		}
		for _, name := range names {
			src, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			res, d := blueprints.Format(name, src)
			if d.HasErrors() {
				diags = append(diags, d...)
				files[name] = &hcl.File{Bytes: src}
				continue
			}
			if bytes.Equal(src, res) {
				continue
			}
			unformatted++
			if o.check || o.write && !o.diff {
				fmt.Fprintln(out, name)
			}
			if o.diff {
				fmt.Fprint(out, unifiedDiff(name, string(src), string(res)))
			}
			if o.write {
				st, err := os.Stat(name)
				if err != nil {
					return err
				}
				if err := os.WriteFile(name, res, st.Mode().Perm()); err != nil {
					return fmt.Errorf("cannot write %s: %w", name, err)
				}
			}
		}
	}
	if len(diags) > 0 {
		if err := blueprints.WriteDiagnostics(errw, files, diags, 100); err != nil {
			return err
		}
		return &ExitError{Code: 1}
	}
	if o.check && unformatted > 0 {
		fmt.Fprintf(errw, "%d file(s) not formatted; run nemoclave fmt to fix them.\n", unformatted)
		return &ExitError{Code: 1}
	}
	return nil
}

// fmtTargets lists the *.hcl files at path.
func fmtTargets(path string, recursive bool) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Like the go tool, skip testdata (deliberately broken files),
			// hidden directories and vendored trees unless named directly.
			if p != path && (!recursive || strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".hcl") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
