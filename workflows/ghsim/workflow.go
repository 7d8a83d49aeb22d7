package ghsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// workflowDef is what the simulator reads from a workflow file: its name,
// run-name, workflow_dispatch inputs and first job.
type workflowDef struct {
	Name     string
	RunName  string
	Dispatch bool // has a workflow_dispatch trigger
	Inputs   []inputDef
	JobName  string   // expression; "" = the job id
	JobID    string   // first job's key
	RunsOn   []string // expressions of the first job's runs-on
}

type inputDef struct {
	Name       string
	Type       string // string (default), boolean, choice, number, environment
	Required   bool
	Default    string
	HasDefault bool
	Options    []string
}

func (w *workflowDef) input(name string) (inputDef, bool) {
	for _, in := range w.Inputs {
		if in.Name == name {
			return in, true
		}
	}
	return inputDef{}, false
}

// parseWorkflow reads a workflow file. Only what the simulator needs is
// interpreted; the rest of the file is ignored.
func parseWorkflow(content []byte) (*workflowDef, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, fmt.Errorf("invalid workflow file: %w", err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("invalid workflow file: not a mapping")
	}
	root := doc.Content[0]
	w := &workflowDef{}
	if n := mapValue(root, "name"); n != nil {
		w.Name = n.Value
	}
	if n := mapValue(root, "run-name"); n != nil {
		w.RunName = n.Value
	}
	if on := mapValue(root, "on"); on != nil {
		switch on.Kind {
		case yaml.ScalarNode:
			w.Dispatch = on.Value == "workflow_dispatch"
		case yaml.SequenceNode:
			for _, e := range on.Content {
				if e.Value == "workflow_dispatch" {
					w.Dispatch = true
				}
			}
		case yaml.MappingNode:
			if wd := mapEntry(on, "workflow_dispatch"); wd != nil {
				w.Dispatch = true
				if inputs := mapValue(wd, "inputs"); inputs != nil && inputs.Kind == yaml.MappingNode {
					for i := 0; i+1 < len(inputs.Content); i += 2 {
						in, err := parseInput(inputs.Content[i].Value, inputs.Content[i+1])
						if err != nil {
							return nil, err
						}
						w.Inputs = append(w.Inputs, in)
					}
				}
			}
		}
	}
	if jobs := mapValue(root, "jobs"); jobs != nil && jobs.Kind == yaml.MappingNode && len(jobs.Content) >= 2 {
		w.JobID = jobs.Content[0].Value
		job := jobs.Content[1]
		if n := mapValue(job, "name"); n != nil {
			w.JobName = n.Value
		}
		if n := mapValue(job, "runs-on"); n != nil {
			switch n.Kind {
			case yaml.ScalarNode:
				w.RunsOn = []string{n.Value}
			case yaml.SequenceNode:
				for _, e := range n.Content {
					w.RunsOn = append(w.RunsOn, e.Value)
				}
			case yaml.MappingNode:
				if l := mapValue(n, "labels"); l != nil {
					if l.Kind == yaml.ScalarNode {
						w.RunsOn = []string{l.Value}
					}
					for _, e := range l.Content {
						w.RunsOn = append(w.RunsOn, e.Value)
					}
				}
			}
		}
	}
	return w, nil
}

func parseInput(name string, n *yaml.Node) (inputDef, error) {
	in := inputDef{Name: name, Type: "string"}
	if n.Kind != yaml.MappingNode {
		return in, nil
	}
	if t := mapValue(n, "type"); t != nil {
		in.Type = t.Value
	}
	if r := mapValue(n, "required"); r != nil {
		b, err := strconv.ParseBool(r.Value)
		if err != nil {
			return in, fmt.Errorf("invalid workflow file: input %q: required must be a boolean", name)
		}
		in.Required = b
	}
	if d := mapValue(n, "default"); d != nil {
		in.Default, in.HasDefault = d.Value, true
	}
	if o := mapValue(n, "options"); o != nil {
		for _, e := range o.Content {
			in.Options = append(in.Options, e.Value)
		}
	}
	return in, nil
}

func mapEntry(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mapValue is mapEntry, treating an explicit null as absent.
func mapValue(m *yaml.Node, key string) *yaml.Node {
	n := mapEntry(m, key)
	if n != nil && n.Tag == "!!null" {
		return nil
	}
	return n
}

// exprContext is what ${{ }} expressions can read.
type exprContext struct {
	inputs   map[string]string
	actor    string
	ref      string // refs/heads/main
	repo     string // owner/name
	sha      string
	workflow string
	runID    int64
	runNum   int
	attempt  int
}

func (c exprContext) lookup(path []string) any {
	if len(path) == 0 {
		return nil
	}
	inputs := func(rest []string) any {
		if len(rest) == 0 {
			m := map[string]any{}
			for k, v := range c.inputs {
				m[k] = v
			}
			return m
		}
		if len(rest) != 1 {
			return nil
		}
		v, ok := c.inputs[rest[0]]
		if !ok {
			return nil
		}
		return v
	}
	switch strings.ToLower(path[0]) {
	case "inputs":
		return inputs(path[1:])
	case "github":
		if len(path) >= 3 && strings.EqualFold(path[1], "event") && strings.EqualFold(path[2], "inputs") {
			return inputs(path[3:])
		}
		if len(path) != 2 {
			return nil
		}
		switch strings.ToLower(path[1]) {
		case "actor", "triggering_actor":
			return c.actor
		case "ref":
			return c.ref
		case "ref_name", "head_ref":
			if path[1] == "head_ref" {
				return ""
			}
			return strings.TrimPrefix(strings.TrimPrefix(c.ref, "refs/heads/"), "refs/tags/")
		case "ref_type":
			if strings.HasPrefix(c.ref, "refs/tags/") {
				return "tag"
			}
			return "branch"
		case "repository":
			return c.repo
		case "repository_owner":
			owner, _, _ := strings.Cut(c.repo, "/")
			return owner
		case "sha":
			return c.sha
		case "workflow":
			return c.workflow
		case "event_name":
			return "workflow_dispatch"
		case "run_id":
			return strconv.FormatInt(c.runID, 10)
		case "run_number":
			return strconv.Itoa(c.runNum)
		case "run_attempt":
			return strconv.Itoa(c.attempt)
		}
	}
	return nil
}

// renderTemplate substitutes every ${{ expression }} in s, as GitHub does
// for run-name and job names. An expression it cannot evaluate renders as
// the empty string, like an undefined context value on GitHub.
func renderTemplate(s string, c exprContext) string {
	var b strings.Builder
	for {
		start := strings.Index(s, "${{")
		if start < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := strings.Index(s[start:], "}}")
		if end < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:start])
		v, err := evalExpr(s[start+3:start+end], c)
		if err == nil {
			b.WriteString(exprString(v))
		}
		s = s[start+end+2:]
	}
}

func exprString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case bool:
		return x
	case float64:
		return x != 0
	}
	return true
}

// evalExpr evaluates the subset of GitHub's expression language the
// templates use: literals, context paths (inputs.x, github.event.inputs.x,
// github.actor, ...), property access and ['x'] indexing, ||, &&, ==, !=, !,
// parentheses and the functions format, fromJSON, toJSON, contains,
// startsWith and endsWith.
func evalExpr(src string, c exprContext) (any, error) {
	p := &exprParser{src: src, ctx: c}
	v, err := p.or()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.src) {
		return nil, fmt.Errorf("unexpected %q in expression", p.src[p.pos:])
	}
	return v, nil
}

type exprParser struct {
	src string
	pos int
	ctx exprContext
}

func (p *exprParser) space() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n') {
		p.pos++
	}
}

func (p *exprParser) eat(tok string) bool {
	p.space()
	if strings.HasPrefix(p.src[p.pos:], tok) {
		p.pos += len(tok)
		return true
	}
	return false
}

func (p *exprParser) or() (any, error) {
	v, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.eat("||") {
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		if !truthy(v) {
			v = r
		}
	}
	return v, nil
}

func (p *exprParser) and() (any, error) {
	v, err := p.cmp()
	if err != nil {
		return nil, err
	}
	for p.eat("&&") {
		r, err := p.cmp()
		if err != nil {
			return nil, err
		}
		if truthy(v) {
			v = r
		}
	}
	return v, nil
}

func (p *exprParser) cmp() (any, error) {
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		var neg bool
		switch {
		case p.eat("=="):
		case p.eat("!="):
			neg = true
		default:
			return v, nil
		}
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		eq := strings.EqualFold(exprString(v), exprString(r))
		v = eq != neg
	}
}

func (p *exprParser) unary() (any, error) {
	if p.eat("!") {
		v, err := p.unary()
		if err != nil {
			return nil, err
		}
		return !truthy(v), nil
	}
	v, err := p.primary()
	if err != nil {
		return nil, err
	}
	return p.postfix(v)
}

func (p *exprParser) postfix(v any) (any, error) {
	for {
		switch {
		case p.eat("."):
			name := p.ident()
			if name == "" {
				return nil, errors.New("expected a property name")
			}
			v = property(v, name)
		case p.eat("["):
			key, err := p.or()
			if err != nil {
				return nil, err
			}
			if !p.eat("]") {
				return nil, errors.New("expected ]")
			}
			v = property(v, exprString(key))
		default:
			return v, nil
		}
	}
}

func property(v any, name string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for k, x := range m {
		if strings.EqualFold(k, name) {
			return x
		}
	}
	return nil
}

func (p *exprParser) ident() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) {
		ch := p.src[p.pos]
		if ch == '_' || ch == '-' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *exprParser) primary() (any, error) {
	p.space()
	if p.pos >= len(p.src) {
		return nil, errors.New("unexpected end of expression")
	}
	switch ch := p.src[p.pos]; {
	case ch == '(':
		p.pos++
		v, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.eat(")") {
			return nil, errors.New("expected )")
		}
		return v, nil
	case ch == '\'':
		p.pos++
		var b strings.Builder
		for p.pos < len(p.src) {
			if p.src[p.pos] == '\'' {
				if p.pos+1 < len(p.src) && p.src[p.pos+1] == '\'' {
					b.WriteByte('\'')
					p.pos += 2
					continue
				}
				p.pos++
				return b.String(), nil
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		}
		return nil, errors.New("unterminated string")
	case ch == '-' || ch >= '0' && ch <= '9':
		start := p.pos
		p.pos++
		for p.pos < len(p.src) && (p.src[p.pos] == '.' || p.src[p.pos] >= '0' && p.src[p.pos] <= '9') {
			p.pos++
		}
		return strconv.ParseFloat(p.src[start:p.pos], 64)
	}
	name := p.ident()
	if name == "" {
		return nil, fmt.Errorf("unexpected %q in expression", p.src[p.pos:])
	}
	switch strings.ToLower(name) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if p.eat("(") {
		var args []any
		if !p.eat(")") {
			for {
				a, err := p.or()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.eat(")") {
					break
				}
				if !p.eat(",") {
					return nil, errors.New("expected , or )")
				}
			}
		}
		return callFunc(name, args)
	}
	// A context path: read as many .name segments as form a known path.
	path := []string{name}
	for {
		save := p.pos
		if !p.eat(".") {
			break
		}
		seg := p.ident()
		if seg == "" {
			p.pos = save
			break
		}
		path = append(path, seg)
	}
	return p.ctx.lookup(path), nil
}

func callFunc(name string, args []any) (any, error) {
	str := func(i int) string {
		if i < len(args) {
			return exprString(args[i])
		}
		return ""
	}
	switch strings.ToLower(name) {
	case "format":
		out := str(0)
		for i := 1; i < len(args); i++ {
			out = strings.ReplaceAll(out, "{"+strconv.Itoa(i-1)+"}", str(i))
		}
		return strings.ReplaceAll(strings.ReplaceAll(out, "{{", "{"), "}}", "}"), nil
	case "fromjson":
		var v any
		if err := json.Unmarshal([]byte(str(0)), &v); err != nil {
			return nil, fmt.Errorf("fromJSON: %w", err)
		}
		return v, nil
	case "tojson":
		var v any
		if len(args) > 0 {
			v = args[0]
		}
		b, err := json.MarshalIndent(v, "", "  ")
		return string(b), err
	case "contains":
		return strings.Contains(strings.ToLower(str(0)), strings.ToLower(str(1))), nil
	case "startswith":
		return strings.HasPrefix(strings.ToLower(str(0)), strings.ToLower(str(1))), nil
	case "endswith":
		return strings.HasSuffix(strings.ToLower(str(0)), strings.ToLower(str(1))), nil
	}
	return nil, fmt.Errorf("unknown function %s", name)
}
