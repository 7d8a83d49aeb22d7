package templates_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// This file is a small evaluator for the GitHub Actions expressions the
// templates use, so that the structural tests follow a template the way the
// runner would for a given platform and arch instead of pattern-matching it.
//
// It knows literals ('str', numbers, true, false, null), the inputs and env
// contexts, property access, fromJSON, !, ==, !=, && and || (which, as on
// GitHub, yield one of their operands). Contexts only known at run time
// (steps, secrets, github, runner, vars) evaluate to unknown, and conditions
// use three-valued logic over them, so "windows && <unknown>" is false on
// mac. Anything else is an error: the tests fail rather than guess.

// unknownValue stands for a value only known while the workflow runs.
type unknownValue struct{ what string }

func (u unknownValue) String() string { return "<" + u.what + ">" }

// knownOrEmpty is a context (or part of one) whose missing properties are
// "" rather than errors: steps.x.outputs.y and secrets.Y.
type knownOrEmpty struct{ m map[string]any }

// tristate is a three-valued truth value.
type tristate int

const (
	triFalse tristate = iota
	triTrue
	triUnknown
)

func (t tristate) String() string {
	return [...]string{"false", "true", "unknown"}[t]
}

// exprContext is what an expression can see.
type exprContext struct {
	Inputs map[string]string
	Env    map[string]any
	// Steps and Secrets, when set, make those contexts known (a missing
	// output or secret is "", as on GitHub): the script tests use them to
	// run a step. When nil they evaluate to unknown.
	Steps   map[string]map[string]string
	Secrets map[string]string
	GitHub  map[string]string
}

// exprNode is a parsed expression.
type exprNode interface{}

type (
	litNode  struct{ v any }
	pathNode struct {
		base exprNode // nil for a context name
		name string
	}
	callNode struct {
		fn   string
		args []exprNode
	}
	notNode    struct{ x exprNode }
	binaryNode struct {
		op   string
		l, r exprNode
	}
)

type token struct {
	kind string // str, num, ident, op, eof
	text string
}

func lexExpr(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for {
				if j >= len(src) {
					return nil, fmt.Errorf("unterminated string in %q", src)
				}
				if src[j] == '\'' {
					if j+1 < len(src) && src[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(src[j])
				j++
			}
			toks = append(toks, token{"str", b.String()})
			i = j + 1
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			toks = append(toks, token{"num", src[i:j]})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '-' || src[j] >= 'a' && src[j] <= 'z' ||
				src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{"ident", src[i:j]})
			i = j
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch {
			case two == "==" || two == "!=" || two == "&&" || two == "||":
				toks = append(toks, token{"op", two})
				i += 2
			case strings.ContainsRune("!().,", rune(c)):
				toks = append(toks, token{"op", string(c)})
				i++
			default:
				return nil, fmt.Errorf("unsupported character %q in %q", c, src)
			}
		}
	}
	return append(toks, token{kind: "eof"}), nil
}

type exprParser struct {
	toks []token
	pos  int
	src  string
}

func parseExpr(src string) (exprNode, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &exprParser{toks: toks, src: src}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != "eof" {
		return nil, fmt.Errorf("unexpected %q in %q", p.peek().text, src)
	}
	return n, nil
}

func (p *exprParser) peek() token { return p.toks[p.pos] }
func (p *exprParser) next() token { t := p.toks[p.pos]; p.pos++; return t }
func (p *exprParser) isOp(op string) bool {
	return p.peek().kind == "op" && p.peek().text == op
}

func (p *exprParser) or() (exprNode, error)  { return p.binary("||", p.and) }
func (p *exprParser) and() (exprNode, error) { return p.binary("&&", p.equality) }

func (p *exprParser) binary(op string, operand func() (exprNode, error)) (exprNode, error) {
	l, err := operand()
	if err != nil {
		return nil, err
	}
	for p.isOp(op) {
		p.next()
		r, err := operand()
		if err != nil {
			return nil, err
		}
		l = binaryNode{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) equality() (exprNode, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isOp("==") || p.isOp("!=") {
		op := p.next().text
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = binaryNode{op: op, l: l, r: r}
	}
	return l, nil
}

func (p *exprParser) unary() (exprNode, error) {
	if p.isOp("!") {
		p.next()
		x, err := p.unary()
		return notNode{x}, err
	}
	return p.postfix()
}

func (p *exprParser) postfix() (exprNode, error) {
	n, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.isOp(".") {
		p.next()
		t := p.next()
		if t.kind != "ident" {
			return nil, fmt.Errorf("expected a property name after '.' in %q", p.src)
		}
		n = pathNode{base: n, name: t.text}
	}
	return n, nil
}

func (p *exprParser) primary() (exprNode, error) {
	t := p.next()
	switch t.kind {
	case "str":
		return litNode{t.text}, nil
	case "num":
		f, err := strconv.ParseFloat(t.text, 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q in %q", t.text, p.src)
		}
		return litNode{f}, nil
	case "ident":
		switch t.text {
		case "true":
			return litNode{true}, nil
		case "false":
			return litNode{false}, nil
		case "null":
			return litNode{nil}, nil
		}
		if p.isOp("(") {
			p.next()
			var args []exprNode
			for !p.isOp(")") {
				a, err := p.or()
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.isOp(",") {
					p.next()
				} else if !p.isOp(")") {
					return nil, fmt.Errorf("expected ',' or ')' in %q", p.src)
				}
			}
			p.next()
			return callNode{fn: t.text, args: args}, nil
		}
		return pathNode{name: t.text}, nil
	case "op":
		if t.text == "(" {
			n, err := p.or()
			if err != nil {
				return nil, err
			}
			if !p.isOp(")") {
				return nil, fmt.Errorf("missing ')' in %q", p.src)
			}
			p.next()
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected %q in %q", t.text, p.src)
}

// runtimeContexts are contexts whose values exist only while a run executes.
var runtimeContexts = map[string]bool{"steps": true, "secrets": true, "github": true, "runner": true, "vars": true, "job": true}

func (c exprContext) eval(n exprNode) (any, error) {
	switch n := n.(type) {
	case litNode:
		return n.v, nil
	case pathNode:
		if n.base == nil {
			switch {
			case n.name == "inputs":
				m := map[string]any{}
				for k, v := range c.Inputs {
					m[k] = v
				}
				return m, nil
			case n.name == "env":
				return c.Env, nil
			case n.name == "steps" && c.Steps != nil:
				m := map[string]any{}
				for id, outputs := range c.Steps {
					o := map[string]any{}
					for k, v := range outputs {
						o[k] = v
					}
					m[id] = map[string]any{"outputs": o}
				}
				return knownOrEmpty{m}, nil
			case n.name == "github" && c.GitHub != nil:
				m := map[string]any{}
				for k, v := range c.GitHub {
					m[k] = v
				}
				return knownOrEmpty{m}, nil
			case n.name == "secrets" && c.Secrets != nil:
				m := map[string]any{}
				for k, v := range c.Secrets {
					m[k] = v
				}
				return knownOrEmpty{m}, nil
			case runtimeContexts[n.name]:
				return unknownValue{n.name}, nil
			}
			return nil, fmt.Errorf("unsupported context %q", n.name)
		}
		base, err := c.eval(n.base)
		if err != nil {
			return nil, err
		}
		switch b := base.(type) {
		case knownOrEmpty:
			v, ok := b.m[n.name]
			if !ok {
				return knownOrEmpty{}, nil
			}
			if m, isMap := v.(map[string]any); isMap {
				return knownOrEmpty{m}, nil
			}
			return v, nil
		case unknownValue:
			return unknownValue{b.what + "." + n.name}, nil
		case map[string]any:
			if v, ok := b[n.name]; ok {
				return v, nil
			}
			for k, v := range b { // GitHub property names are case-insensitive
				if strings.EqualFold(k, n.name) {
					return v, nil
				}
			}
			return nil, nil
		case nil:
			return nil, fmt.Errorf("property %q of null", n.name)
		}
		return nil, fmt.Errorf("property %q of %T", n.name, base)
	case callNode:
		if !strings.EqualFold(n.fn, "fromJSON") || len(n.args) != 1 {
			return nil, fmt.Errorf("unsupported function %s/%d", n.fn, len(n.args))
		}
		arg, err := c.eval(n.args[0])
		if err != nil {
			return nil, err
		}
		arg = leaf(arg)
		if u, ok := arg.(unknownValue); ok {
			return u, nil
		}
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("fromJSON of %T", arg)
		}
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("fromJSON(%q): %w", s, err)
		}
		return v, nil
	case notNode:
		t, err := c.truth(n.x)
		if err != nil {
			return nil, err
		}
		switch t {
		case triTrue:
			return false, nil
		case triFalse:
			return true, nil
		}
		return unknownValue{"!"}, nil
	case binaryNode:
		switch n.op {
		case "&&", "||":
			l, err := c.eval(n.l)
			if err != nil {
				return nil, err
			}
			if _, ok := l.(unknownValue); ok {
				return unknownValue{n.op}, nil
			}
			if truthy(l) == (n.op == "||") {
				return l, nil
			}
			return c.eval(n.r)
		case "==", "!=":
			eq, err := c.equal(n.l, n.r)
			if err != nil {
				return nil, err
			}
			switch eq {
			case triUnknown:
				return unknownValue{n.op}, nil
			case triTrue:
				return n.op == "==", nil
			}
			return n.op == "!=", nil
		}
	}
	return nil, fmt.Errorf("cannot evaluate %#v", n)
}

func (c exprContext) equal(ln, rn exprNode) (tristate, error) {
	l, err := c.eval(ln)
	if err != nil {
		return triUnknown, err
	}
	r, err := c.eval(rn)
	if err != nil {
		return triUnknown, err
	}
	l, r = leaf(l), leaf(r)
	_, lu := l.(unknownValue)
	_, ru := r.(unknownValue)
	if lu || ru {
		return triUnknown, nil
	}
	switch lv := l.(type) {
	case string:
		if rv, ok := r.(string); ok {
			return boolTri(strings.EqualFold(lv, rv)), nil // GitHub compares strings ignoring case
		}
	case bool:
		if rv, ok := r.(bool); ok {
			return boolTri(lv == rv), nil
		}
	case float64:
		if rv, ok := r.(float64); ok {
			return boolTri(lv == rv), nil
		}
	case nil:
		return boolTri(r == nil), nil
	}
	return triUnknown, fmt.Errorf("comparison of %T with %T is not supported here", l, r)
}

// truth evaluates a condition with three-valued logic.
func (c exprContext) truth(n exprNode) (tristate, error) {
	switch n := n.(type) {
	case binaryNode:
		if n.op == "&&" || n.op == "||" {
			short := triFalse
			if n.op == "||" {
				short = triTrue
			}
			l, err := c.truth(n.l)
			if err != nil {
				return triUnknown, err
			}
			if l == short {
				return short, nil
			}
			r, err := c.truth(n.r)
			if err != nil {
				return triUnknown, err
			}
			if r == short {
				return short, nil
			}
			if l == triUnknown || r == triUnknown {
				return triUnknown, nil
			}
			return 1 - short, nil
		}
	case notNode:
		t, err := c.truth(n.x)
		if err != nil || t == triUnknown {
			return triUnknown, err
		}
		return 1 - t, nil
	}
	v, err := c.eval(n)
	if err != nil {
		return triUnknown, err
	}
	v = leaf(v)
	if _, ok := v.(unknownValue); ok {
		return triUnknown, nil
	}
	return boolTri(truthy(v)), nil
}

// leaf turns a missing step output or secret into "".
func leaf(v any) any {
	if k, ok := v.(knownOrEmpty); ok && k.m == nil {
		return ""
	}
	return v
}

func boolTri(b bool) tristate {
	if b {
		return triTrue
	}
	return triFalse
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case float64:
		return v != 0
	}
	return true
}

// condition evaluates a step's if: (with or without ${{ }}); "" is true.
func (c exprContext) condition(src string) (tristate, error) {
	src = strings.TrimSpace(src)
	if src == "" {
		return triTrue, nil
	}
	if strings.HasPrefix(src, "${{") && strings.HasSuffix(src, "}}") && strings.Count(src, "${{") == 1 {
		src = strings.TrimSuffix(strings.TrimPrefix(src, "${{"), "}}")
	} else if strings.Contains(src, "${{") {
		return triUnknown, fmt.Errorf("unsupported if: %q", src)
	}
	n, err := parseExpr(src)
	if err != nil {
		return triUnknown, err
	}
	return c.truth(n)
}

// interpolate evaluates a string holding ${{ }} expressions, as GitHub does
// for env values and with: inputs. A value that is one expression keeps its
// type; otherwise the parts are joined as strings. The result is an
// unknownValue when any part is only known at run time.
func (c exprContext) interpolate(s string) (any, error) {
	trimmed := strings.TrimSpace(s)
	if strings.HasPrefix(trimmed, "${{") && strings.HasSuffix(trimmed, "}}") && strings.Count(trimmed, "${{") == 1 {
		n, err := parseExpr(trimmed[3 : len(trimmed)-2])
		if err != nil {
			return nil, err
		}
		v, err := c.eval(n)
		return leaf(v), err
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "${{")
		if i < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unterminated expression in %q", s)
		}
		n, err := parseExpr(rest[i+3 : i+j])
		if err != nil {
			return nil, err
		}
		v, err := c.eval(n)
		if err != nil {
			return nil, err
		}
		v = leaf(v)
		str, err := valueString(v)
		if err != nil {
			return nil, err
		}
		if _, ok := v.(unknownValue); ok {
			return v, nil
		}
		b.WriteString(str)
		rest = rest[i+j+2:]
	}
}

// valueString renders a value the way GitHub puts it into a string.
func valueString(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case unknownValue:
		return v.String(), nil
	}
	return "", fmt.Errorf("cannot render %T as a string", v)
}
