package rule

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/expr-lang/expr/vm"
)

// Used is one fact a condition used and its value at evaluation time.
type Used struct {
	Name  string // the named fact, or the reading function as written canonically
	Value Value
}

// Outcome is the result of evaluating a condition.
type Outcome struct {
	// Known is false when a fact the condition needs (outside default()) has no data; the
	// condition then neither holds nor fails, and Holds is false.
	Known bool
	Holds bool
	// Missing names the facts without data that made the outcome unknown.
	Missing []string
	// Used lists every fact the condition used, series first, in order of first use.
	Used []Used
}

// Explain writes the outcome for a run's reason or a decision: the condition, whether it held,
// and the facts it saw.
func (o Outcome) Explain(p *Program) string {
	var b strings.Builder
	b.WriteString(p.source)
	switch {
	case !o.Known:
		b.WriteString(": unknown, no data for " + strings.Join(o.Missing, ", "))
		return b.String()
	case o.Holds:
		b.WriteString(" holds")
	default:
		b.WriteString(" does not hold")
	}
	if len(o.Used) > 0 {
		b.WriteString(": ")
		for i, u := range o.Used {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(u.Name + " = " + u.Value.Describe())
		}
	}
	return b.String()
}

// ErrMissingFact: Eval was given Facts without a value for a fact the program uses.
var ErrMissingFact = errors.New("rule: fact not provided")

// Eval evaluates the condition over facts. Every fact the program uses must be present in facts
// (a fact without data is a Value with Missing set); an absent one is ErrMissingFact. Evaluation
// performs no I/O and its cost is bounded by the program's size.
func (p *Program) Eval(facts Facts) (Outcome, error) {
	out := Outcome{Known: true}
	env := make(map[string]any, len(p.vars)+1)
	series := make(map[string]float64, len(p.series))
	for _, s := range p.series {
		v, ok := facts.Series[s]
		if !ok {
			return Outcome{}, fmt.Errorf("%w: %s", ErrMissingFact, s.Key())
		}
		key := s.Key()
		out.Used = append(out.Used, Used{Name: key, Value: v})
		f := math.NaN()
		if x, ok := v.V.(float64); ok && !v.Missing {
			f = x
		}
		if s.Func == FuncCount && v.Missing {
			f = 0
		}
		series[key] = f
		if v.Missing && p.required[key] {
			out.Known = false
			out.Missing = append(out.Missing, key)
		}
	}
	env[seriesEnv] = series
	for _, name := range p.vars {
		v, ok := facts.Vars[name]
		if !ok {
			return Outcome{}, fmt.Errorf("%w: %s", ErrMissingFact, name)
		}
		out.Used = append(out.Used, Used{Name: name, Value: v})
		def, _ := LookupVar(name)
		x := v.V
		if v.Missing || x == nil {
			x = def.Kind.zero()
			if def.Kind == Number {
				x = math.NaN()
			}
		}
		x, err := coerce(def.Kind, x)
		if err != nil {
			return Outcome{}, fmt.Errorf("fact %s: %w", name, err)
		}
		env[name] = x
		if v.Missing && p.required[name] {
			out.Known = false
			out.Missing = append(out.Missing, name)
		}
	}
	if !out.Known {
		return out, nil
	}
	machine := vm.VM{MemoryBudget: memoryBudget}
	res, err := machine.Run(p.prog, env)
	if err != nil {
		return Outcome{}, fmt.Errorf("evaluate %q: %w", p.source, err)
	}
	holds, ok := res.(bool)
	if !ok {
		return Outcome{}, fmt.Errorf("evaluate %q: result %v is not true or false", p.source, res)
	}
	out.Holds = holds
	return out, nil
}

func coerce(k Kind, x any) (any, error) {
	switch k {
	case Number:
		switch v := x.(type) {
		case float64:
			return v, nil
		case int:
			return float64(v), nil
		}
	case Integer:
		switch v := x.(type) {
		case int:
			return v, nil
		case float64:
			return int(v), nil
		}
	case Bool:
		if v, ok := x.(bool); ok {
			return v, nil
		}
	case Text:
		if v, ok := x.(string); ok {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%v (%T) is not a %s", x, x, k)
}
