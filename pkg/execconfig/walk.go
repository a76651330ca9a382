package execconfig

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
)

// checker walks a decoded YAML/JSON tree alongside the Go type it will be
// decoded into. It reports every unknown key (with the nearest known name)
// and every value of the wrong type, and normalises the tree on the way:
// snake_case and camelCase spellings of a field become the canonical one,
// and numbers or booleans written as strings (as templates produce) become
// numbers and booleans where the field needs them.
type checker struct {
	source string
	errs   []error
}

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	quantityType    = reflect.TypeFor[resource.Quantity]()
)

func (c *checker) fail(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Source: c.source, Path: path, Problem: fmt.Sprintf(format, args...)})
}

// walk checks v against t and returns v normalised.
func (c *checker) walk(path string, v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if !c.leaf(path, v, t) {
			return nil
		}
		return v
	}
	switch t.Kind() {
	case reflect.Struct:
		return c.object(path, v, t)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "expected a map, got %s", describe(v))
			return nil
		}
		for _, k := range sortedKeys(m) {
			m[k] = c.walk(child(path, k), m[k], t.Elem())
		}
		return m
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			c.fail(path, "expected a list, got %s", describe(v))
			return nil
		}
		for i := range l {
			l[i] = c.walk(index(path, i), l[i], t.Elem())
		}
		return l
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.fail(path, "expected a string, got %s (quote it)", describe(v))
			return nil
		}
		return v
	case reflect.Bool:
		return c.boolean(path, v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return c.integer(path, v, t)
	case reflect.Interface:
		return v
	}
	c.fail(path, "unsupported field type %s", t)
	return nil
}

func (c *checker) object(path string, v any, t reflect.Type) any {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(path, "expected a map of fields, got %s", describe(v))
		return nil
	}
	fields := fieldsOf(t)
	for _, key := range sortedKeys(m) {
		ft, ok := fields.types[key]
		if !ok {
			canon, found := fields.folded[fold(key)]
			if !found {
				msg := fmt.Sprintf("unknown field %q", key)
				if s := suggest(key, fields.names); s != "" {
					msg += fmt.Sprintf(", did you mean %q?", s)
				}
				c.fail(child(path, key), "%s", msg)
				delete(m, key)
				continue
			}
			if _, dup := m[canon]; dup {
				c.fail(child(path, key), "given twice, as %q and %q", key, canon)
				delete(m, key)
				continue
			}
			m[canon] = m[key]
			delete(m, key)
			key, ft = canon, fields.types[canon]
		}
		m[key] = c.walk(child(path, key), m[key], ft)
	}
	return m
}

// leaf checks a value whose type decodes itself (quantities, int-or-string,
// StringList) by letting the type decode it.
func (c *checker) leaf(path string, v any, t reflect.Type) bool {
	data, err := json.Marshal(v)
	if err != nil {
		c.fail(path, "%v", err)
		return false
	}
	if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(data); err != nil {
		if t == quantityType {
			c.fail(path, "%s is not a quantity (examples: \"500m\", \"2\", \"512Mi\", \"2Gi\")", data)
			return false
		}
		c.fail(path, "%v", err)
		return false
	}
	return true
}

func (c *checker) boolean(path string, v any) any {
	switch b := v.(type) {
	case bool:
		return b
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p
		}
	}
	c.fail(path, "expected true or false, got %s", describe(v))
	return nil
}

func (c *checker) integer(path string, v any, t reflect.Type) any {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int:
		f = float64(n)
	case int64:
		f = float64(n)
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(n), 10, 64)
		if err != nil {
			c.fail(path, "expected a whole number, got %s", describe(v))
			return nil
		}
		f = float64(i)
	default:
		c.fail(path, "expected a whole number, got %s", describe(v))
		return nil
	}
	signed := t.Kind() < reflect.Uint
	if f != math.Trunc(f) || signed && reflect.Zero(t).OverflowInt(int64(f)) || !signed && (f < 0 || reflect.Zero(t).OverflowUint(uint64(f))) {
		c.fail(path, "expected a whole number that fits %s, got %v", t.Kind(), v)
		return nil
	}
	return f
}

// describe names a decoded value for a message: its JSON type and value.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return "string " + strconv.Quote(x)
	case float64:
		return "number " + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case map[string]any:
		return "a map"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// fieldSet is the JSON fields of one struct type, inline members included.
type fieldSet struct {
	types  map[string]reflect.Type
	folded map[string]string // fold(name) -> name
	names  []string
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{types: map[string]reflect.Type{}, folded: map[string]string{}}
	collectFields(t, fs)
	for name := range fs.types {
		fs.names = append(fs.names, name)
		fs.folded[fold(name)] = name
	}
	sort.Strings(fs.names)
	fieldCache.Store(t, fs)
	return fs
}

func collectFields(t reflect.Type, fs *fieldSet) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			collectFields(ft, fs)
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs.types[name] = f.Type
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
