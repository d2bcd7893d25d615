package notify

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"
)

// TestTemplateViews: every data type has a view with exactly the fields a
// template can name on the public type (promoted ones included), of the same
// types and values, and the same methods giving the same results, for a
// value and for a pointer. A field added to TicketInfo or Base without its
// view counterpart fails here instead of vanishing from the templates.
func TestTemplateViews(t *testing.T) {
	tests := []struct {
		public reflect.Type
		view   reflect.Type
	}{
		{reflect.TypeFor[AckData](), reflect.TypeFor[ackView]()},
		{reflect.TypeFor[ForwardData](), reflect.TypeFor[forwardView]()},
		{reflect.TypeFor[ResolvedData](), reflect.TypeFor[resolvedView]()},
		{reflect.TypeFor[UnknownSenderData](), reflect.TypeFor[unknownSenderView]()},
		{reflect.TypeFor[CommandErrorData](), reflect.TypeFor[commandErrorView]()},
		{reflect.TypeFor[SLAData](), reflect.TypeFor[slaView]()},
	}
	for _, tc := range tests {
		t.Run(tc.public.Name(), func(t *testing.T) {
			// Fields: the same names, each at the top level of the view.
			var names []string
			for _, f := range reflect.VisibleFields(tc.public) {
				if !f.IsExported() {
					continue
				}
				names = append(names, f.Name)
				vf, ok := tc.view.FieldByName(f.Name)
				switch {
				case !ok:
					t.Errorf("%v.%s (%v) is missing from %v", tc.public, f.Name, f.Type, tc.view)
				case len(vf.Index) != 1:
					t.Errorf("%v.%s is not a top-level field", tc.view, f.Name)
				case vf.Type != f.Type:
					t.Errorf("%v.%s is a %v, %v.%s a %v", tc.view, f.Name, vf.Type, tc.public, f.Name, f.Type)
				}
			}
			for _, f := range reflect.VisibleFields(tc.view) {
				if f.Anonymous {
					t.Errorf("%v embeds %v: promoted fields are what the view avoids", tc.view, f.Type)
				}
				if f.IsExported() && !slices.Contains(names, f.Name) {
					t.Errorf("%v.%s has no counterpart in %v", tc.view, f.Name, tc.public)
				}
			}

			// Methods: the same names and signatures, on the value and on a
			// pointer.
			for _, pair := range [][2]reflect.Type{{tc.public, tc.view}, {reflect.PointerTo(tc.public), reflect.PointerTo(tc.view)}} {
				if got, want := methodSignatures(pair[1]), methodSignatures(pair[0]); !reflect.DeepEqual(got, want) {
					t.Errorf("methods of %v:\n%v\nmethods of %v:\n%v", pair[1], got, pair[0], want)
				}
			}

			// Values: every field and every method result of the view of a
			// value with every field set equals the public one.
			pub := reflect.New(tc.public)
			seed := 0
			fill(t, pub.Elem(), &seed)
			for _, data := range []reflect.Value{pub.Elem(), pub} {
				view := reflect.ValueOf(templateView(data.Interface()))
				if want := data.Type(); view.Type() == want {
					t.Fatalf("templateView(%v) has no view", want)
				}
				if view.Kind() != data.Kind() {
					t.Fatalf("templateView(%v) is a %v", data.Type(), view.Type())
				}
				for _, name := range names {
					got, want := reflect.Indirect(view).FieldByName(name), reflect.Indirect(data).FieldByName(name)
					if got.IsValid() && !reflect.DeepEqual(got.Interface(), want.Interface()) {
						t.Errorf("%v.%s = %v, want %v", view.Type(), name, got, want)
					}
				}
				for i := range data.NumMethod() {
					name := data.Type().Method(i).Name
					vm := view.MethodByName(name)
					if !vm.IsValid() {
						continue // reported above
					}
					got, want := callZero(vm), callZero(data.Method(i))
					if !reflect.DeepEqual(got, want) {
						t.Errorf("%v.%s() = %v, want %v", view.Type(), name, got, want)
					}
				}
			}
		})
	}
}

// TestEverySampleHasAView: every kind's data type renders through a view.
func TestEverySampleHasAView(t *testing.T) {
	for _, kind := range Kinds() {
		for _, s := range samples(kind) {
			if reflect.TypeOf(templateView(s.data)) == reflect.TypeOf(s.data) {
				t.Errorf("%s/%s: %T has no template view", kind, s.name, s.data)
			}
		}
	}
	// Anything else is executed as it is.
	m := map[string]any{"Tag": "x"}
	if v := templateView(m); !reflect.DeepEqual(v, m) {
		t.Errorf("templateView(map) = %#v", v)
	}
}

// methodSignatures lists typ's exported methods as "Name func(args) results"
// without the receiver.
func methodSignatures(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		var in, res []string
		for j := 1; j < m.Type.NumIn(); j++ {
			in = append(in, m.Type.In(j).String())
		}
		for j := range m.Type.NumOut() {
			res = append(res, m.Type.Out(j).String())
		}
		out = append(out, fmt.Sprintf("%s(%s) (%s)", m.Name, strings.Join(in, ", "), strings.Join(res, ", ")))
	}
	return out
}

// callZero calls a method value with zero arguments of its parameter types.
func callZero(m reflect.Value) []any {
	args := make([]reflect.Value, m.Type().NumIn())
	for i := range args {
		args[i] = reflect.Zero(m.Type().In(i))
	}
	var out []any
	for _, r := range m.Call(args) {
		out = append(out, r.Interface())
	}
	return out
}

// fill sets every field reachable in v to a value distinct from the zero
// value and from every other field's. A type it does not know fails the test:
// extend fill for it.
func fill(t *testing.T, v reflect.Value, seed *int) {
	t.Helper()
	*seed++
	n := *seed
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 1, n, n, n, 0, 0, time.UTC)))
		return
	case reflect.TypeFor[*time.Location]():
		v.Set(reflect.ValueOf(time.FixedZone(fmt.Sprintf("Z%d", n), n*60)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(n))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range v.Len() {
			fill(t, v.Index(i), seed)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("fill: %v has an unexported field; extend fill", v.Type())
			}
			fill(t, v.Field(i), seed)
		}
	default:
		t.Fatalf("fill: no value for a %v; extend fill", v.Type())
	}
}

// TestViewErrorsNameThePublicType: an error about the data names the type
// the documentation names, not the view.
func TestViewErrorsNameThePublicType(t *testing.T) {
	dir := writeOverrides(t, map[string]string{"ack.en.subject.tmpl": "{{.Tag}} {{.Nope}}\n"})
	tm, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := SampleData(KindAck).(AckData)
	tests := []struct {
		name string
		data any
		want string
	}{
		{"value", d, "can't evaluate field Nope in type notify.AckData"},
		{"pointer", &d, "can't evaluate field Nope in type *notify.AckData"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tm.Render(KindAck, LangEnglish, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "ackView") {
				t.Errorf("err = %v, want one with %q", err, tc.want)
			}
			// The renaming keeps the error's type for errors.As.
			var ee template.ExecError
			if !errors.As(err, &ee) {
				t.Errorf("err = %#v: errors.As finds no template.ExecError under the renaming", err)
			}
		})
	}
}
