package rule

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// Limits that bound what a condition may cost. The language has no loops, ranges, closures,
// member access or I/O, so a program's work is linear in its size; these bound the size and
// the memory of one evaluation.
const (
	// MaxSourceLen is the longest condition, in bytes.
	MaxSourceLen = 2000
	// MaxNodes is the largest syntax tree a condition may have.
	MaxNodes = 250
	// MaxSeries is how many distinct reading functions one condition may use (each is a query).
	MaxSeries = 16
	// memoryBudget bounds the allocations of one evaluation (expr's units).
	memoryBudget = 10_000
)

// seriesEnv is the hidden environment member that holds the values of the reading functions;
// each call is rewritten into a lookup in it. Conditions cannot name it.
const seriesEnv = "__series"

// Error is a condition that cannot be compiled, with where: Line and Column (1-based, in
// characters) point at the offending part.
type Error struct {
	Line    int
	Column  int
	Message string
	Snippet string // the line with a caret under the column
}

func (e *Error) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

func errorAt(source string, loc file.Location, format string, args ...any) *Error {
	fe := (&file.Error{Location: loc, Message: fmt.Sprintf(format, args...)}).Bind(file.NewSource(source))
	return &Error{Line: fe.Line, Column: fe.Column + 1, Message: fe.Message, Snippet: strings.TrimPrefix(fe.Snippet, "\n")}
}

func fromExprError(source string, err error) *Error {
	if fe, ok := err.(*file.Error); ok {
		msg := fe.Message
		if fe.Snippet == "" { // not bound to the source yet
			fe = fe.Bind(file.NewSource(source))
		}
		return &Error{Line: fe.Line, Column: fe.Column + 1, Message: msg, Snippet: strings.TrimPrefix(fe.Snippet, "\n")}
	}
	msg := err.Error()
	if t, ok := strings.CutPrefix(msg, "expected bool, but got "); ok {
		kinds := map[string]string{"int": "a whole number", "float64": "a number", "string": "text"}
		if k, ok := kinds[t]; ok {
			t = k
		}
		msg = "a condition must be true or false, but this is " + t
	}
	return errorAt(source, file.Location{From: 0, To: 1}, "%s", msg)
}

// Program is a compiled condition. It is immutable and safe for concurrent use.
type Program struct {
	source   string
	prog     *vm.Program
	series   []Series        // distinct, in order of first use
	vars     []string        // distinct named facts, in order of first use
	required map[string]bool // fact names (var name or Series.Key) used outside default()
}

// String returns the condition as written.
func (p *Program) String() string { return p.source }

// Series lists the reading functions the condition uses.
func (p *Program) Series() []Series { return slices.Clone(p.series) }

// Vars lists the named facts the condition uses.
func (p *Program) Vars() []string { return slices.Clone(p.vars) }

// Uses reports whether the condition uses the named fact.
func (p *Program) Uses(name string) bool { return slices.Contains(p.vars, name) }

// allowedBuiltins are expr's own functions a condition may call: pure arithmetic.
var allowedBuiltins = []string{"abs", "ceil", "floor", "round"}

func options(rewrite ast.Visitor) []expr.Option {
	env := map[string]any{seriesEnv: map[string]float64{}}
	for _, v := range vars {
		env[v.Name] = v.Kind.zero()
	}
	opts := []expr.Option{
		expr.Env(env),
		expr.AsBool(),
		expr.DisableAllBuiltins(),
		expr.MaxNodes(MaxNodes),
		expr.Function(FuncMin, numeric(math.Min), new(func(float64, ...float64) float64)),
		expr.Function(FuncMax, numeric(math.Max), new(func(float64, ...float64) float64)),
		expr.Function("default", func(p ...any) (any, error) {
			if v := p[0].(float64); !math.IsNaN(v) {
				return v, nil
			}
			return p[1], nil
		}, new(func(float64, float64) float64)),
	}
	for _, b := range allowedBuiltins {
		opts = append(opts, expr.EnableBuiltin(b))
	}
	// The other reading functions exist for the parser (so that it reads them as calls, not as
	// expr's own builtins of the same name); every call of them is rewritten before checking.
	for _, f := range seriesFuncs {
		if f == FuncMin || f == FuncMax {
			continue
		}
		opts = append(opts, expr.Function(f, func(...any) (any, error) {
			return nil, fmt.Errorf("%s called without facts", f)
		}, new(func(string, string) float64)))
	}
	if rewrite != nil {
		opts = append(opts, expr.Patch(rewrite))
	}
	return opts
}

// numeric is min or max over numbers.
func numeric(f func(a, b float64) float64) func(...any) (any, error) {
	return func(p ...any) (any, error) {
		out := math.NaN()
		for i, x := range p {
			v, err := toFloat(x)
			if err != nil {
				return nil, err
			}
			if i == 0 {
				out = v
			} else {
				out = f(out, v)
			}
		}
		return out, nil
	}
}

func toFloat(x any) (float64, error) {
	switch v := x.(type) {
	case float64:
		return v, nil
	case int:
		return float64(v), nil
	case []any: // the variadic part
		return 0, fmt.Errorf("unexpected list")
	}
	return 0, fmt.Errorf("%v is not a number", x)
}

// Compile checks a condition and compiles it. The error is an *Error with the position of the
// problem.
func Compile(source string) (*Program, error) {
	if strings.TrimSpace(source) == "" {
		return nil, &Error{Line: 1, Column: 1, Message: "empty condition"}
	}
	if len(source) > MaxSourceLen {
		return nil, &Error{Line: 1, Column: utf8.RuneCountInString(source[:MaxSourceLen]) + 1,
			Message: fmt.Sprintf("condition longer than %d bytes", MaxSourceLen)}
	}
	// Parse with the same configuration the compiler uses, so calls read the same.
	cfg := conf.CreateNew()
	for _, op := range options(nil) {
		op(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	tree, err := parser.ParseWithConfig(source, cfg)
	if err != nil {
		return nil, fromExprError(source, err)
	}
	c := &collector{source: source, required: map[string]bool{}}
	c.walk(tree.Node, false)
	if c.err != nil {
		return nil, c.err
	}
	if len(c.series) > MaxSeries {
		return nil, &Error{Line: 1, Column: 1, Message: fmt.Sprintf("%d reading functions; at most %d", len(c.series), MaxSeries)}
	}
	prog, err := expr.Compile(source, options(rewriter{})...)
	if err != nil {
		return nil, fromExprError(source, err)
	}
	return &Program{source: source, prog: prog, series: c.series, vars: c.vars, required: c.required}, nil
}

// collector checks a parsed condition against the language's limits and collects the facts it
// uses.
type collector struct {
	source   string
	err      *Error
	series   []Series
	vars     []string
	required map[string]bool
}

func (c *collector) fail(n ast.Node, format string, args ...any) {
	if c.err == nil {
		c.err = errorAt(c.source, n.Location(), format, args...)
	}
}

func (c *collector) use(name string, optional bool) {
	if !optional {
		c.required[name] = true
	}
}

// walk visits n; optional is true inside default()'s first argument, where a missing fact is
// allowed.
func (c *collector) walk(n ast.Node, optional bool) {
	if c.err != nil || n == nil {
		return
	}
	switch n := n.(type) {
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.StringNode:
	case *ast.IdentifierNode:
		if _, ok := LookupVar(n.Value); !ok {
			c.fail(n, "unknown name %q (the facts are listed in docs/rules.md)", n.Value)
			return
		}
		if !slices.Contains(c.vars, n.Value) {
			c.vars = append(c.vars, n.Value)
		}
		c.use(n.Value, optional)
	case *ast.UnaryNode:
		c.walk(n.Node, optional)
	case *ast.BinaryNode:
		if n.Operator == ".." {
			c.fail(n, "ranges (..) are not allowed in a condition")
			return
		}
		c.walk(n.Left, optional)
		c.walk(n.Right, optional)
	case *ast.ConditionalNode:
		c.walk(n.Cond, optional)
		c.walk(n.Exp1, optional)
		c.walk(n.Exp2, optional)
	case *ast.ArrayNode:
		for _, e := range n.Nodes {
			c.walk(e, optional)
		}
	case *ast.BuiltinNode:
		if !slices.Contains(allowedBuiltins, n.Name) {
			c.fail(n, "function %s is not allowed in a condition", n.Name)
			return
		}
		for _, a := range n.Arguments {
			c.walk(a, optional)
		}
	case *ast.CallNode:
		c.call(n, optional)
	case *ast.NilNode:
		c.fail(n, "nil is not allowed in a condition: a missing fact is NaN (see default())")
	default:
		c.fail(n, "this construct (%s) is not allowed in a condition", nodeKind(n))
	}
}

func nodeKind(n ast.Node) string {
	switch n.(type) {
	case *ast.MemberNode, *ast.ChainNode:
		return "member access"
	case *ast.SliceNode:
		return "slice"
	case *ast.MapNode, *ast.PairNode:
		return "map"
	case *ast.PredicateNode, *ast.PointerNode:
		return "predicate"
	case *ast.VariableDeclaratorNode:
		return "let"
	case *ast.SequenceNode:
		return "sequence"
	}
	return fmt.Sprintf("%T", n)
}

func calleeName(n *ast.CallNode) string {
	if id, ok := n.Callee.(*ast.IdentifierNode); ok {
		return id.Value
	}
	return ""
}

// isSeriesCall reports whether a call is a reading function (rather than numeric min or max).
func isSeriesCall(n *ast.CallNode) bool {
	name := calleeName(n)
	if !slices.Contains(seriesFuncs, name) {
		return false
	}
	if name == FuncMin || name == FuncMax {
		if len(n.Arguments) == 0 {
			return false
		}
		_, str := n.Arguments[0].(*ast.StringNode)
		return str
	}
	return true
}

func (c *collector) call(n *ast.CallNode, optional bool) {
	name := calleeName(n)
	switch {
	case name == "":
		c.fail(n, "only named functions may be called")
	case isSeriesCall(n):
		s, err := c.seriesOf(n)
		if err != nil {
			c.err = err
			return
		}
		if !slices.Contains(c.series, s) {
			c.series = append(c.series, s)
		}
		if s.Func != FuncCount {
			c.use(s.Key(), optional)
		}
	case name == FuncMin || name == FuncMax:
		if len(n.Arguments) == 0 {
			c.fail(n, "%s needs at least one number", name)
			return
		}
		for _, a := range n.Arguments {
			c.walk(a, optional)
		}
	case name == "default":
		if len(n.Arguments) != 2 {
			c.fail(n, "default takes two arguments: default(fact, value when the fact has no data)")
			return
		}
		c.walk(n.Arguments[0], true)
		c.walk(n.Arguments[1], optional)
	default:
		c.fail(n, "unknown function %q (the functions are listed in docs/rules.md)", name)
	}
}

// seriesOf reads the constant arguments of a reading function: metric, window and scope.
func (c *collector) seriesOf(n *ast.CallNode) (Series, *Error) {
	name := calleeName(n)
	s := Series{Func: name, Scope: ScopeZone}
	usage := fmt.Sprintf("%s(\"metric\", \"window\"[, \"zone\" or \"farm\"])", name)
	if name == FuncLast {
		usage = `last("metric"[, "window"[, "zone" or "farm"]])`
	}
	args := n.Arguments
	minArgs := 2
	if name == FuncLast {
		minArgs = 1
	}
	if len(args) < minArgs || len(args) > 3 {
		return s, errorAt(c.source, n.Location(), "%s takes %d to 3 arguments: %s", name, minArgs, usage)
	}
	str := func(i int, what string) (string, *Error) {
		lit, ok := args[i].(*ast.StringNode)
		if !ok {
			return "", errorAt(c.source, args[i].Location(), "the %s of %s must be a quoted constant: %s", what, name, usage)
		}
		return lit.Value, nil
	}
	metric, err := str(0, "metric")
	if err != nil {
		return s, err
	}
	if !ValidMetric(metric) {
		return s, errorAt(c.source, args[0].Location(), "%q is not a metric name (lower-case letters, digits and _)", metric)
	}
	s.Metric = metric
	s.Window = DefaultLastWindow
	if len(args) >= 2 {
		w, err := str(1, "window")
		if err != nil {
			return s, err
		}
		d, perr := ParseDuration(w)
		if perr != nil {
			return s, errorAt(c.source, args[1].Location(), "%v", perr)
		}
		if d < time.Second || d > MaxWindow {
			return s, errorAt(c.source, args[1].Location(), "window %s: must be between 1s and %s", w, FormatDuration(MaxWindow))
		}
		s.Window = d
	}
	if len(args) == 3 {
		scope, err := str(2, "scope")
		if err != nil {
			return s, err
		}
		if scope != ScopeZone && scope != ScopeFarm {
			return s, errorAt(c.source, args[2].Location(), "scope %q: must be \"zone\" or \"farm\"", scope)
		}
		s.Scope = scope
	}
	return s, nil
}

// rewriter turns each reading function call into a lookup of its value in the hidden series
// map, so the compiled program reads facts gathered beforehand and performs no I/O.
type rewriter struct{}

func (rewriter) Visit(node *ast.Node) {
	n, ok := (*node).(*ast.CallNode)
	if !ok || !isSeriesCall(n) {
		return
	}
	c := &collector{}
	s, err := c.seriesOf(n)
	if err != nil {
		return // Compile already refused it
	}
	ast.Patch(node, &ast.MemberNode{
		Node:     &ast.IdentifierNode{Value: seriesEnv},
		Property: &ast.StringNode{Value: s.Key()},
	})
}
