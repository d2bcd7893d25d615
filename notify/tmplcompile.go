package notify

// A compiled renderer for the templates: text/template's parse tree turned
// into Go closures once per bound template, so that a render does not look
// fields up by name or call functions through reflect.Value.Call, which is
// where text/template spends most of a render (about 100 µs per new ticket
// before this).
//
// It covers what the built-in templates use: text, actions, if/with/range
// (over slices and arrays), variables, fields and zero-argument methods, the
// builtins not/and/or/eq/ne, the package's own template functions (by
// signature) and html/template's escapers for HTML text, RCDATA, attribute
// values and URLs. A template using anything else (an override with
// {{template}}, printf, index, a JS or CSS context…) is not compiled and runs
// on text/template as before.
//
// The compiled renderer never decides an error. Whenever it meets a case it
// does not reproduce exactly (an error of any kind, a nil pointer on the
// way, a map to range over, a panic), it gives up, and the render runs again
// on text/template, which produces the output or the error message the
// operator would have had without it. TestCompiledMatchesTextTemplate and
// FuzzCompiledTemplate check that a compiled render that succeeds is byte for
// byte what text/template renders.

import (
	"errors"
	"fmt"
	htmltemplate "html/template"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template/parse"
	"time"

	"github.com/northwind-it/ticketgw/domain"
)

// errUncompiled marks a construct or a value the compiled renderer leaves
// to text/template.
var errUncompiled = errors.New("not handled by the compiled renderer")

// cprog is a compiled template. It is immutable but for its field look-up
// caches, which are atomic: safe for concurrent use.
type cprog struct {
	root cnode
}

// cstate is one execution: the output and the variable stack.
type cstate struct {
	w    *strings.Builder
	vars []cvar
}

type cvar struct {
	name  string
	value reflect.Value
}

func (s *cstate) mark() int                         { return len(s.vars) }
func (s *cstate) pop(mark int)                      { s.vars = s.vars[:mark] }
func (s *cstate) push(name string, v reflect.Value) { s.vars = append(s.vars, cvar{name, v}) }
func (s *cstate) setTopVar(n int, v reflect.Value)  { s.vars[len(s.vars)-n].value = v }

func (s *cstate) setVar(name string, v reflect.Value) error {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			s.vars[i].value = v
			return nil
		}
	}
	return errUncompiled
}

func (s *cstate) varValue(name string) (reflect.Value, error) {
	for i := len(s.vars) - 1; i >= 0; i-- {
		if s.vars[i].name == name {
			return s.vars[i].value, nil
		}
	}
	return reflect.Value{}, errUncompiled
}

type (
	cnode func(s *cstate, dot reflect.Value) error
	cexpr func(s *cstate, dot reflect.Value) (reflect.Value, error)
	// ccmd is one command of a pipeline; final is the previous command's
	// value (the compiler knows whether there is one).
	ccmd func(s *cstate, dot, final reflect.Value) (reflect.Value, error)
)

// execute renders p with data into w. Any error means "run text/template
// instead"; w then holds partial output.
func (p *cprog) execute(w *strings.Builder, data any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errUncompiled
		}
	}()
	value, ok := data.(reflect.Value)
	if !ok {
		value = reflect.ValueOf(data)
	}
	var vars [8]cvar
	s := cstate{w: w, vars: vars[:1]}
	s.vars[0] = cvar{"$", value}
	return p.root(&s, value)
}

// compiler turns a parse tree into a cprog. funcs are the template's own
// functions; html means the tree is html/template's escaped tree, whose
// escaper functions it implements.
type compiler struct {
	funcs map[string]any
	html  bool
	// strs are the string forms of the commands that have one (call).
	strs map[*parse.CommandNode]strCall
}

// compileTree compiles tree, or returns errUncompiled (wrapped) for a
// template it does not cover.
func compileTree(tree *parse.Tree, funcs map[string]any, html bool) (*cprog, error) {
	if tree == nil || tree.Root == nil {
		return nil, errUncompiled
	}
	c := &compiler{funcs: funcs, html: html}
	root, err := c.list(tree.Root)
	if err != nil {
		return nil, err
	}
	return &cprog{root: root}, nil
}

func unsupported(n parse.Node) error {
	return fmt.Errorf("%w: %s", errUncompiled, n)
}

func (c *compiler) list(l *parse.ListNode) (cnode, error) {
	if l == nil {
		return nil, nil
	}
	var nodes []cnode
	for _, n := range l.Nodes {
		cn, err := c.node(n)
		if err != nil {
			return nil, err
		}
		if cn != nil {
			nodes = append(nodes, cn)
		}
	}
	return func(s *cstate, dot reflect.Value) error {
		for _, n := range nodes {
			if err := n(s, dot); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

func (c *compiler) node(n parse.Node) (cnode, error) {
	switch n := n.(type) {
	case *parse.TextNode:
		text := string(n.Text)
		return func(s *cstate, _ reflect.Value) error {
			s.w.WriteString(text)
			return nil
		}, nil
	case *parse.CommentNode:
		return nil, nil
	case *parse.ListNode:
		return c.list(n)
	case *parse.ActionNode:
		pipe, err := c.pipeline(n.Pipe)
		if err != nil {
			return nil, err
		}
		if len(n.Pipe.Decl) > 0 { // declares variables: prints nothing
			return func(s *cstate, dot reflect.Value) error {
				_, err := pipe(s, dot)
				return err
			}, nil
		}
		if last := n.Pipe.Cmds[len(n.Pipe.Cmds)-1]; c.strs[last] != nil {
			// The last command's result is a string: the commands before
			// it, then that call, its text written as it is.
			str := c.strs[last]
			head, err := c.pipeline(&parse.PipeNode{NodeType: parse.NodePipe, Pos: n.Pipe.Pos, Cmds: n.Pipe.Cmds[:len(n.Pipe.Cmds)-1]})
			if err != nil {
				return nil, err
			}
			return func(s *cstate, dot reflect.Value) error {
				final, err := head(s, dot)
				if err != nil {
					return err
				}
				text, err := str(s, dot, final)
				if err != nil {
					return err
				}
				s.w.WriteString(text)
				return nil
			}, nil
		}
		return func(s *cstate, dot reflect.Value) error {
			v, err := pipe(s, dot)
			if err != nil {
				return err
			}
			return printValue(s.w, v)
		}, nil
	case *parse.IfNode:
		return c.branch(&n.BranchNode, false)
	case *parse.WithNode:
		return c.branch(&n.BranchNode, true)
	case *parse.RangeNode:
		return c.rangeNode(n)
	}
	return nil, unsupported(n)
}

// branchParts compiles the pipeline and the two lists of an if, with or
// range.
func (c *compiler) branchParts(b *parse.BranchNode) (pipe cexpr, list, elseList cnode, err error) {
	if pipe, err = c.pipeline(b.Pipe); err != nil {
		return nil, nil, nil, err
	}
	if list, err = c.list(b.List); err != nil {
		return nil, nil, nil, err
	}
	if elseList, err = c.list(b.ElseList); err != nil {
		return nil, nil, nil, err
	}
	return pipe, list, elseList, nil
}

// branch compiles {{if}} and {{with}} (text/template's walkIfOrWith).
func (c *compiler) branch(b *parse.BranchNode, with bool) (cnode, error) {
	pipe, list, elseList, err := c.branchParts(b)
	if err != nil {
		return nil, err
	}
	return func(s *cstate, dot reflect.Value) error {
		mark := s.mark()
		val, err := pipe(s, dot)
		if err != nil {
			return err
		}
		truth, ok := isTrue(indirectInterface(val))
		if !ok {
			return errUncompiled
		}
		switch {
		case truth && with:
			err = list(s, val)
		case truth:
			err = list(s, dot)
		case elseList != nil:
			err = elseList(s, dot)
		}
		s.pop(mark)
		return err
	}, nil
}

// rangeNode compiles {{range}} over slices and arrays (and nothing, an
// invalid value); other kinds are left to text/template at run time.
func (c *compiler) rangeNode(r *parse.RangeNode) (cnode, error) {
	pipe, list, elseList, err := c.branchParts(&r.BranchNode)
	if err != nil {
		return nil, err
	}
	decl := make([]string, len(r.Pipe.Decl))
	for i, d := range r.Pipe.Decl {
		decl[i] = d.Ident[0]
	}
	assign := r.Pipe.IsAssign
	return func(s *cstate, dot reflect.Value) error {
		outer := s.mark()
		v, err := pipe(s, dot)
		if err != nil {
			return err
		}
		val, _ := indirect(v)
		mark := s.mark()
		switch val.Kind() {
		case reflect.Array, reflect.Slice:
			n := val.Len()
			if n == 0 {
				break
			}
			for i := range n {
				elem := val.Index(i)
				if len(decl) > 0 {
					if assign {
						x := elem
						if len(decl) > 1 {
							x = reflect.ValueOf(i)
						}
						if err := s.setVar(decl[0], x); err != nil {
							return err
						}
					} else {
						s.setTopVar(1, elem)
					}
				}
				if len(decl) > 1 {
					if assign {
						if err := s.setVar(decl[1], elem); err != nil {
							return err
						}
					} else {
						s.setTopVar(2, reflect.ValueOf(i))
					}
				}
				err := list(s, elem)
				s.pop(mark)
				if err != nil {
					return err
				}
			}
			s.pop(outer)
			return nil
		case reflect.Invalid:
		default:
			return errUncompiled // maps, integers, channels, iterators
		}
		if elseList != nil {
			if err := elseList(s, dot); err != nil {
				return err
			}
		}
		s.pop(outer)
		return nil
	}, nil
}

// pipeline compiles text/template's evalPipeline.
func (c *compiler) pipeline(p *parse.PipeNode) (cexpr, error) {
	if p == nil {
		return func(*cstate, reflect.Value) (reflect.Value, error) { return reflect.Value{}, nil }, nil
	}
	cmds := make([]ccmd, len(p.Cmds))
	for i, cmd := range p.Cmds {
		cc, err := c.command(cmd, i > 0)
		if err != nil {
			return nil, err
		}
		cmds[i] = cc
	}
	decl := make([]string, len(p.Decl))
	for i, d := range p.Decl {
		decl[i] = d.Ident[0]
	}
	assign := p.IsAssign
	return func(s *cstate, dot reflect.Value) (reflect.Value, error) {
		var v reflect.Value
		for _, cmd := range cmds {
			var err error
			if v, err = cmd(s, dot, v); err != nil {
				return reflect.Value{}, err
			}
			if v.Kind() == reflect.Interface && v.Type().NumMethod() == 0 {
				v = v.Elem()
			}
		}
		for _, name := range decl {
			if assign {
				if err := s.setVar(name, v); err != nil {
					return reflect.Value{}, err
				}
			} else {
				s.push(name, v)
			}
		}
		return v, nil
	}, nil
}

// command compiles one command; hasFinal says whether the pipeline passes
// it the previous command's value.
func (c *compiler) command(cmd *parse.CommandNode, hasFinal bool) (ccmd, error) {
	args := cmd.Args
	first := args[0]
	if id, ok := first.(*parse.IdentifierNode); ok {
		cc, sc, err := c.call(id.Ident, args[1:], hasFinal)
		if err == nil && sc != nil {
			if c.strs == nil {
				c.strs = make(map[*parse.CommandNode]strCall)
			}
			c.strs[cmd] = sc
		}
		return cc, err
	}
	if len(args) > 1 || hasFinal {
		// Arguments to something that is not a function: a method with
		// arguments, or an error. text/template handles both.
		return nil, unsupported(cmd)
	}
	e, err := c.operand(first)
	if err != nil {
		return nil, err
	}
	return func(s *cstate, dot, _ reflect.Value) (reflect.Value, error) { return e(s, dot) }, nil
}

// operand compiles a node that yields a value without being called with
// arguments: dot, a field chain, a variable, a parenthesized pipeline, a
// function called without arguments, or a constant.
func (c *compiler) operand(n parse.Node) (cexpr, error) {
	switch n := n.(type) {
	case *parse.DotNode:
		return func(_ *cstate, dot reflect.Value) (reflect.Value, error) { return dot, nil }, nil
	case *parse.FieldNode:
		chain := newFieldChain(n.Ident)
		return func(_ *cstate, dot reflect.Value) (reflect.Value, error) { return chain.eval(dot) }, nil
	case *parse.VariableNode:
		name := n.Ident[0]
		chain := newFieldChain(n.Ident[1:])
		return func(s *cstate, _ reflect.Value) (reflect.Value, error) {
			v, err := s.varValue(name)
			if err != nil {
				return v, err
			}
			return chain.eval(v)
		}, nil
	case *parse.PipeNode:
		return c.pipeline(n)
	case *parse.IdentifierNode:
		call, _, err := c.call(n.Ident, nil, false)
		if err != nil {
			return nil, err
		}
		return func(s *cstate, dot reflect.Value) (reflect.Value, error) { return call(s, dot, reflect.Value{}) }, nil
	case *parse.StringNode:
		v := reflect.ValueOf(n.Text)
		return constant(v), nil
	case *parse.BoolNode:
		return constant(reflect.ValueOf(n.True)), nil
	case *parse.NumberNode:
		v, ok := intConstant(n)
		if !ok {
			return nil, unsupported(n)
		}
		return constant(v), nil
	}
	return nil, unsupported(n)
}

func constant(v reflect.Value) cexpr {
	return func(*cstate, reflect.Value) (reflect.Value, error) { return v, nil }
}

// intConstant is text/template's idealConstant for a plain decimal integer
// that fits an int; other numbers are left to text/template.
func intConstant(n *parse.NumberNode) (reflect.Value, bool) {
	t := strings.TrimPrefix(strings.TrimPrefix(n.Text, "-"), "+")
	if t == "" || !n.IsInt {
		return reflect.Value{}, false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return reflect.Value{}, false
		}
	}
	if len(t) > 1 && t[0] == '0' { // octal
		return reflect.Value{}, false
	}
	v := int(n.Int64)
	if int64(v) != n.Int64 {
		return reflect.Value{}, false
	}
	return reflect.ValueOf(v), true
}

// fieldChain is .A.B.C: one look-up site per name, each with a cache of
// the last receiver type it resolved.
type fieldChain []*fieldSite

func newFieldChain(idents []string) fieldChain {
	fc := make(fieldChain, len(idents))
	for i, id := range idents {
		fc[i] = &fieldSite{name: id}
	}
	return fc
}

func (fc fieldChain) eval(v reflect.Value) (reflect.Value, error) {
	for _, f := range fc {
		var err error
		if v, err = f.eval(v); err != nil {
			return v, err
		}
	}
	return v, nil
}

type fieldSite struct {
	name  string
	cache atomic.Pointer[fieldRes]
}

// fieldRes is how a name resolves on one receiver type.
type fieldRes struct {
	typ  reflect.Type // the receiver's type after indirection
	addr bool         // the receiver, after indirection, is addressable
	kind fieldKind
	// kindField:
	index []int
	// kindMethod (called on the receiver, or its address when addr):
	call func(recv reflect.Value) (reflect.Value, error)
	// kindMap:
	key reflect.Value
}

type fieldKind int

const (
	kindNone fieldKind = iota
	kindField
	kindMethod
	kindMap
)

// eval is text/template's evalField for a name without arguments.
func (f *fieldSite) eval(recv reflect.Value) (reflect.Value, error) {
	if !recv.IsValid() {
		return reflect.Value{}, errUncompiled
	}
	r, isNil := indirect(recv)
	if isNil {
		return reflect.Value{}, errUncompiled
	}
	// The look-up depends on the receiver's type after indirection (an
	// interface field holds values of many types) and on whether it is
	// addressable (which adds the pointer's methods).
	rt, addr := r.Type(), r.CanAddr()
	res := f.cache.Load()
	if res == nil || res.typ != rt || res.addr != addr {
		res = resolveField(rt, addr, f.name)
		f.cache.Store(res)
	}
	switch res.kind {
	case kindField:
		v, err := r.FieldByIndexErr(res.index)
		if err != nil {
			return reflect.Value{}, errUncompiled
		}
		return v, nil
	case kindMethod:
		if addr {
			r = r.Addr()
		}
		return res.call(r)
	case kindMap:
		v := r.MapIndex(res.key)
		if !v.IsValid() { // missingkey=error
			return reflect.Value{}, errUncompiled
		}
		return v, nil
	}
	return reflect.Value{}, errUncompiled
}

var (
	errorType       = reflect.TypeFor[error]()
	stringerType    = reflect.TypeFor[fmt.Stringer]()
	reflectValueTyp = reflect.TypeFor[reflect.Value]()
	stringType      = reflect.TypeFor[string]()
	anyType         = reflect.TypeFor[any]()
)

func resolveField(rt reflect.Type, addr bool, name string) *fieldRes {
	res := &fieldRes{typ: rt, addr: addr}
	mt := rt
	if addr {
		mt = reflect.PointerTo(rt)
	}
	if m, ok := mt.MethodByName(name); ok {
		ft := m.Type // the receiver is its first parameter
		if ft.NumIn() != 1 || ft.IsVariadic() || !goodResults(ft) || ft.Out(0) == reflectValueTyp {
			return res // arguments needed, or an odd signature: text/template
		}
		res.kind, res.call = kindMethod, methodCaller(m)
		return res
	}
	switch rt.Kind() {
	case reflect.Struct:
		if sf, ok := rt.FieldByName(name); ok && sf.IsExported() {
			res.kind, res.index = kindField, sf.Index
		}
	case reflect.Map:
		if key := reflect.ValueOf(name); key.Type().AssignableTo(rt.Key()) {
			res.kind, res.key = kindMap, key
		}
	}
	return res
}

// goodResults is text/template's goodFunc: one result, or two with the
// second an error.
func goodResults(ft reflect.Type) bool {
	switch ft.NumOut() {
	case 1:
		return true
	case 2:
		return ft.Out(1) == errorType
	}
	return false
}

// methodCaller calls method m of a receiver without arguments: directly for
// the signatures the templates use (time.Time's IsZero, a view's
// Location…), through reflect for any other.
func methodCaller(m reflect.Method) func(reflect.Value) (reflect.Value, error) {
	var fn any
	func() {
		defer func() { _ = recover() }()
		fn = m.Func.Interface()
	}()
	switch fn := fn.(type) {
	case func(time.Time) bool:
		return timeMethod(fn)
	case func(time.Time) string:
		return timeMethod(fn)
	}
	index := m.Index
	return func(r reflect.Value) (reflect.Value, error) {
		out := r.Method(index).Call(nil)
		if len(out) == 2 && !out[1].IsNil() {
			return reflect.Value{}, errUncompiled
		}
		return out[0], nil
	}
}

// timeMethod calls a method of time.Time, fn being its method expression.
func timeMethod[R any](fn func(time.Time) R) func(reflect.Value) (reflect.Value, error) {
	return func(r reflect.Value) (reflect.Value, error) {
		t, ok := reflect.TypeAssert[time.Time](r)
		if !ok {
			return reflect.Value{}, errUncompiled
		}
		return reflect.ValueOf(fn(t)), nil
	}
}

// call compiles a call of function name with args (and the pipeline's
// final value when hasFinal).
//
// A function whose result is a string (or template.HTML) also comes as a
// strCall, which an action that prints the result uses to write it
// without boxing it in a reflect.Value.
func (c *compiler) call(name string, args []parse.Node, hasFinal bool) (ccmd, strCall, error) {
	if c.html && strings.HasPrefix(name, "_html_template_") {
		return escaperCall(name, args, hasFinal)
	}
	if fn, ok := c.funcs[name]; ok {
		return c.funcCall(name, fn, args, hasFinal)
	}
	switch name {
	case "not", "ne":
		cc, err := c.builtinCall(name, args, hasFinal)
		return cc, nil, err
	case "and", "or", "eq":
		if hasFinal {
			return nil, nil, fmt.Errorf("%w: %s in a pipeline", errUncompiled, name)
		}
		cc, err := c.builtinCall(name, args, hasFinal)
		return cc, nil, err
	}
	return nil, nil, fmt.Errorf("%w: function %s", errUncompiled, name)
}

// strCall is a call whose result, a string, is printed as it is.
type strCall func(s *cstate, dot, final reflect.Value) (string, error)

// builtinCall compiles not, and, or, eq and ne, whose arguments are
// reflect.Values: any valid value.
func (c *compiler) builtinCall(name string, args []parse.Node, hasFinal bool) (ccmd, error) {
	exprs := make([]cexpr, len(args))
	for i, a := range args {
		if _, isNil := a.(*parse.NilNode); isNil {
			return nil, unsupported(a)
		}
		e, err := c.operand(a)
		if err != nil {
			return nil, err
		}
		exprs[i] = e
	}
	n := len(args)
	if hasFinal {
		n++
	}
	arg := func(s *cstate, dot, final reflect.Value, i int) (reflect.Value, error) {
		var v reflect.Value
		if i < len(exprs) {
			var err error
			if v, err = exprs[i](s, dot); err != nil {
				return v, err
			}
		} else {
			v = final
		}
		if !v.IsValid() || v.Type() == reflectValueTyp {
			// Invalid: "invalid value; expected reflect.Value". A
			// reflect.Value held in the data is unwrapped by text/template.
			return v, errUncompiled
		}
		return v, nil
	}
	switch name {
	case "not":
		if n != 1 {
			return nil, fmt.Errorf("%w: not with %d arguments", errUncompiled, n)
		}
		return func(s *cstate, dot, final reflect.Value) (reflect.Value, error) {
			v, err := arg(s, dot, final, 0)
			if err != nil {
				return v, err
			}
			t, _ := isTrue(indirectInterface(v))
			return reflect.ValueOf(!t), nil
		}, nil
	case "and", "or":
		if n < 1 {
			return nil, fmt.Errorf("%w: %s without arguments", errUncompiled, name)
		}
		or := name == "or"
		return func(s *cstate, dot, final reflect.Value) (reflect.Value, error) {
			var v reflect.Value
			for i := range exprs {
				var err error
				if v, err = arg(s, dot, final, i); err != nil {
					return v, err
				}
				if t, _ := isTrue(indirectInterface(v)); t == or {
					return v, nil
				}
			}
			return v, nil
		}, nil
	case "eq", "ne":
		if n < 2 || (name == "ne" && n != 2) {
			return nil, fmt.Errorf("%w: %s with %d arguments", errUncompiled, name, n)
		}
		ne := name == "ne"
		return func(s *cstate, dot, final reflect.Value) (reflect.Value, error) {
			// Every argument is evaluated before the comparison, as
			// text/template does: one that fails fails the call even
			// when an earlier one compares equal.
			var buf [4]reflect.Value
			vals := buf[:0]
			for i := range n {
				v, err := arg(s, dot, final, i)
				if err != nil {
					return v, err
				}
				vals = append(vals, indirectInterface(v))
			}
			a := vals[0]
			for _, b := range vals[1:] {
				eq, err := basicEqual(a, b)
				if err != nil {
					return reflect.Value{}, err
				}
				if eq {
					return reflect.ValueOf(!ne), nil
				}
			}
			return reflect.ValueOf(ne), nil
		}, nil
	}
	return nil, fmt.Errorf("%w: function %s", errUncompiled, name)
}

// basicEqual is text/template's eq for two values of basic kinds; anything
// else is left to text/template.
func basicEqual(a, b reflect.Value) (bool, error) {
	ka, kb := basicKindOf(a), basicKindOf(b)
	if ka != kb {
		switch {
		case ka == reflect.Int && kb == reflect.Uint:
			return a.Int() >= 0 && uint64(a.Int()) == b.Uint(), nil
		case ka == reflect.Uint && kb == reflect.Int:
			return b.Int() >= 0 && a.Uint() == uint64(b.Int()), nil
		case a.IsValid() && b.IsValid():
			return false, errUncompiled // incompatible types
		}
		return false, nil
	}
	switch ka {
	case reflect.Bool:
		return a.Bool() == b.Bool(), nil
	case reflect.Int:
		return a.Int() == b.Int(), nil
	case reflect.Uint:
		return a.Uint() == b.Uint(), nil
	case reflect.Float64:
		return a.Float() == b.Float(), nil
	case reflect.String:
		return a.String() == b.String(), nil
	}
	return false, errUncompiled // complex, nil, structs, pointers…
}

// basicKindOf folds v's kind into text/template's comparison kinds
// (reflect.Invalid for the rest).
func basicKindOf(v reflect.Value) reflect.Kind {
	switch v.Kind() {
	case reflect.Bool:
		return reflect.Bool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return reflect.Int
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return reflect.Uint
	case reflect.Float32, reflect.Float64:
		return reflect.Float64
	case reflect.String:
		return reflect.String
	}
	return reflect.Invalid
}

// argGetter yields a function's argument converted to the parameter type T
// the way text/template's evalArg and validateType do.
type argGetter[T any] func(s *cstate, dot, final reflect.Value) (T, error)

// argAt compiles argument i of a call with args (the final value when i is
// past them).
func argAt[T any](c *compiler, args []parse.Node, i int) (argGetter[T], error) {
	typ := reflect.TypeFor[T]()
	if i >= len(args) {
		return func(_ *cstate, _, final reflect.Value) (T, error) { return convertArg[T](final, typ) }, nil
	}
	switch n := args[i].(type) {
	case *parse.StringNode:
		// evalString / evalEmptyInterface: a string constant.
		if typ != stringType && typ != anyType {
			return nil, unsupported(n)
		}
		v, _ := reflect.TypeAssert[T](reflect.ValueOf(n.Text))
		return func(*cstate, reflect.Value, reflect.Value) (T, error) { return v, nil }, nil
	case *parse.NilNode, *parse.BoolNode, *parse.NumberNode, *parse.ChainNode:
		return nil, unsupported(n)
	}
	e, err := c.operand(args[i])
	if err != nil {
		return nil, err
	}
	return func(s *cstate, dot, _ reflect.Value) (T, error) {
		v, err := e(s, dot)
		if err != nil {
			var zero T
			return zero, err
		}
		return convertArg[T](v, typ)
	}, nil
}

// convertArg is text/template's validateType followed by the conversion to
// the parameter's Go type.
func convertArg[T any](v reflect.Value, typ reflect.Type) (T, error) {
	var zero T
	if !v.IsValid() {
		if typ.Kind() == reflect.Interface {
			return zero, nil // a nil interface
		}
		return zero, errUncompiled
	}
	if !v.Type().AssignableTo(typ) {
		switch {
		case v.Kind() == reflect.Interface && !v.IsNil() && v.Elem().Type().AssignableTo(typ):
			v = v.Elem()
		case v.Kind() == reflect.Pointer && v.Type().Elem().AssignableTo(typ):
			if v.IsNil() {
				return zero, errUncompiled
			}
			v = v.Elem()
		default:
			return zero, errUncompiled
		}
	}
	if typ.Kind() == reflect.Interface && v.Kind() == reflect.Interface && v.IsNil() {
		return zero, nil
	}
	t, ok := reflect.TypeAssert[T](v)
	if !ok {
		return zero, errUncompiled
	}
	return t, nil
}

// funcCall compiles a call of one of the package's template functions,
// chosen by signature. Other signatures are left to text/template.
func (c *compiler) funcCall(name string, fn any, args []parse.Node, hasFinal bool) (ccmd, strCall, error) {
	n := len(args)
	if hasFinal {
		n++
	}
	if t := reflect.TypeOf(fn); t == nil || t.Kind() != reflect.Func || t.IsVariadic() || t.NumIn() != n {
		return nil, nil, fmt.Errorf("%w: call of %s", errUncompiled, name)
	}
	switch fn := fn.(type) {
	case func() string:
		return func(*cstate, reflect.Value, reflect.Value) (reflect.Value, error) { return reflect.ValueOf(fn()), nil },
			func(*cstate, reflect.Value, reflect.Value) (string, error) { return fn(), nil }, nil
	case func(time.Time) (string, error):
		return call1(c, args, fn)
	case func(any) (string, error):
		return call1(c, args, fn)
	case func(string) string:
		return call1(c, args, noError(fn))
	case func(string) htmltemplate.HTML:
		return call1(c, args, noError(fn))
	case func(domain.Address) string:
		return call1(c, args, noError(fn))
	case func(domain.Address) htmltemplate.HTML:
		return call1(c, args, noError(fn))
	case func([]domain.Address) string:
		return call1(c, args, noError(fn))
	case func([]domain.Address) htmltemplate.HTML:
		return call1(c, args, noError(fn))
	case func(time.Time, time.Time) (bool, error):
		a, err := argAt[time.Time](c, args, 0)
		if err != nil {
			return nil, nil, err
		}
		b, err := argAt[time.Time](c, args, 1)
		if err != nil {
			return nil, nil, err
		}
		return func(s *cstate, dot, final reflect.Value) (reflect.Value, error) {
			x, err := a(s, dot, final)
			if err != nil {
				return reflect.Value{}, err
			}
			y, err := b(s, dot, final)
			if err != nil {
				return reflect.Value{}, err
			}
			r, err := fn(x, y)
			if err != nil {
				return reflect.Value{}, errUncompiled
			}
			return reflect.ValueOf(r), nil
		}, nil, nil
	}
	return nil, nil, fmt.Errorf("%w: signature of %s", errUncompiled, name)
}

func noError[A, R any](fn func(A) R) func(A) (R, error) {
	return func(a A) (R, error) { return fn(a), nil }
}

// call1 compiles a call of fn with one argument, and its strCall: R is a
// string type (string, template.HTML), printed as its text, as
// text/template prints it (neither has a String method).
func call1[A any, R ~string](c *compiler, args []parse.Node, fn func(A) (R, error)) (ccmd, strCall, error) {
	a, err := argAt[A](c, args, 0)
	if err != nil {
		return nil, nil, err
	}
	return func(s *cstate, dot, final reflect.Value) (reflect.Value, error) {
			x, err := a(s, dot, final)
			if err != nil {
				return reflect.Value{}, err
			}
			r, err := fn(x)
			if err != nil {
				return reflect.Value{}, errUncompiled
			}
			return reflect.ValueOf(r), nil
		}, func(s *cstate, dot, final reflect.Value) (string, error) {
			x, err := a(s, dot, final)
			if err != nil {
				return "", err
			}
			r, err := fn(x)
			if err != nil {
				return "", errUncompiled
			}
			return string(r), nil
		}, nil
}

// isTrue is text/template's truth of a value.
func isTrue(v reflect.Value) (truth, ok bool) {
	if !v.IsValid() {
		return false, true
	}
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() > 0, true
	case reflect.Bool:
		return v.Bool(), true
	case reflect.Complex64, reflect.Complex128:
		return v.Complex() != 0, true
	case reflect.Chan, reflect.Func, reflect.Pointer, reflect.UnsafePointer, reflect.Interface:
		return !v.IsNil(), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() != 0, true
	case reflect.Float32, reflect.Float64:
		return v.Float() != 0, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() != 0, true
	case reflect.Struct:
		return true, true
	}
	return false, false
}

func indirect(v reflect.Value) (reflect.Value, bool) {
	for ; v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface; v = v.Elem() {
		if v.IsNil() {
			return v, true
		}
	}
	return v, false
}

func indirectInterface(v reflect.Value) reflect.Value {
	if v.Kind() != reflect.Interface {
		return v
	}
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

// printValue is text/template's printValue: fmt.Print of the value, with
// a plain string or int written directly.
func printValue(w *strings.Builder, v reflect.Value) error {
	if v.IsValid() {
		switch v.Type() {
		case stringType:
			w.WriteString(v.String())
			return nil
		case intType:
			var buf [20]byte
			w.Write(strconv.AppendInt(buf[:0], v.Int(), 10))
			return nil
		}
	}
	if v.Kind() == reflect.Pointer {
		v, _ = indirect(v)
	}
	if !v.IsValid() {
		w.WriteString("<no value>")
		return nil
	}
	t := v.Type()
	if !t.Implements(errorType) && !t.Implements(stringerType) {
		pt := reflect.PointerTo(t)
		if v.CanAddr() && (pt.Implements(errorType) || pt.Implements(stringerType)) {
			v = v.Addr()
		} else if k := v.Kind(); k == reflect.Chan || k == reflect.Func {
			return errUncompiled
		}
	}
	fmt.Fprint(w, v.Interface())
	return nil
}

var intType = reflect.TypeFor[int]()
