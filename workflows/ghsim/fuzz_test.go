package ghsim

import (
	"testing"

	"github.com/deskforge/deskforge/templates"
)

// FuzzParseFaults: whatever DESKFORGE_SIM_FAULTS holds, parsing does not
// panic, and what parses formats back to an equal value.
func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"", "drop=0.3,duplicate=0.2,reorder=0.5,api5xx=0.1,latency=50ms,seed=7", "ghes,429", "primary=1,secondary=2", "delay=1h,=,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		faults, err := ParseFaults(s)
		if err != nil {
			return
		}
		again, err := ParseFaults(faults.String())
		if err != nil {
			t.Fatalf("%q formats to %q, which does not parse: %v", s, faults.String(), err)
		}
		if again != faults {
			t.Fatalf("%q: round trip %+v != %+v", s, again, faults)
		}
	})
}

// FuzzRenderTemplate: run-name and job-name expressions from workflow files
// never panic the simulator.
func FuzzRenderTemplate(f *testing.F) {
	for _, s := range []string{templates.RunName, "${{ format('{0}', inputs.a) }}", "${{ fromJSON(inputs.c).x['y'] }}", "${{ (", "${{ 'x' == 'X' && !false || 1 }}"} {
		f.Add(s)
	}
	ctx := exprContext{inputs: map[string]string{"a": "1", "c": `{"x":{"y":2}}`}, ref: "refs/heads/main"}
	f.Fuzz(func(t *testing.T, s string) {
		_ = renderTemplate(s, ctx)
	})
}

// FuzzParseWorkflow: any workflow file committed to a repository parses or
// fails cleanly.
func FuzzParseWorkflow(f *testing.F) {
	f.Add(string(testWorkflow()))
	f.Add("on: [workflow_dispatch]\njobs: {a: {runs-on: [x]}}\n")
	f.Add("on:\n  workflow_dispatch:\n    inputs: {a: {type: choice, options: [1, 2]}}\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseWorkflow([]byte(s))
	})
}
