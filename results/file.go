package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
)

// ErrSchema is returned (wrapped) by ReadJSON when a file is not results.json of the schema
// this package reads.
var ErrSchema = errors.New("results: wrong schema")

// WriteJSON writes f as indented results.json. Runs are written in a stable order (transport in
// the order they are shown, File.Order, then delay, burst, loss, repeat) whatever order f holds
// them in; f is not changed. A NaN or infinite figure is an error naming the run and field
// (JSON cannot hold it), and so is anything Validate refuses: what WriteJSON writes, ReadJSON
// reads.
func WriteJSON(w io.Writer, f *File) error {
	out := *f
	if out.Schema == 0 {
		out.Schema = Schema
	}
	out.Runs = SortedRuns(f)
	// Every run says its stack, carrier and delivery; a run without them (read from a file
	// from before they were written) gets what its time implied (gVisor; legacyCarrier,
	// legacyDelivery).
	for i := range out.Runs {
		out.Runs[i].Stack = out.Runs[i].StackName()
		out.Runs[i].Carrier = out.Runs[i].CarrierName()
		// The interval first: it reads Delivery to tell a run from before deliveries.
		if ms, ok := f.pollEvery(&out.Runs[i]); ok {
			out.Runs[i].PollIntervalMS = ms
		}
		out.Runs[i].Delivery = out.Runs[i].DeliveryName()
	}
	if out.Stack == "" {
		out.Stack = FileStack(&out)
	}
	if out.Summary != nil && out.Findings == nil {
		out.Findings = []Finding{} // a file with a summary always has a findings list
	}
	if err := checkFinite(&out); err != nil {
		return err
	}
	// What ReadJSON would refuse is refused here, while the lab can still say why.
	if err := Validate(&out); err != nil {
		return err
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("results: encoding results.json: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// ReadJSON reads results.json. A file of another schema version, or not a results file at
// all, is an error wrapping ErrSchema that says what was found; so is anything Validate
// refuses (a run without a transport, a loss outside 0..1), naming the run.
func ReadJSON(r io.Reader) (*File, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("results: reading: %w", err)
	}
	var head struct {
		Schema *json.RawMessage `json:"schema"`
		Runs   *json.RawMessage `json:"runs"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: not JSON results (%v); expected the results.json that `lab run` writes", ErrSchema, jsonErr(data, err))
	}
	if head.Schema == nil {
		return nil, fmt.Errorf("%w: no \"schema\" field; expected the results.json that `lab run` writes (schema %d)", ErrSchema, Schema)
	}
	var v int
	if err := json.Unmarshal(*head.Schema, &v); err != nil {
		return nil, fmt.Errorf("%w: \"schema\" is %s, not a version number (this wirelab reads schema %d)", ErrSchema, clip(string(*head.Schema), 20), Schema)
	}
	switch {
	case v > Schema:
		return nil, fmt.Errorf("%w: schema %d was written by a newer wirelab; this one reads schema %d (update wirelab)", ErrSchema, v, Schema)
	case v != Schema:
		return nil, fmt.Errorf("%w: schema %d is not one this wirelab reads (schema %d); rerun `lab run` to regenerate it", ErrSchema, v, Schema)
	}
	if head.Runs == nil {
		return nil, fmt.Errorf("%w: no \"runs\" list", ErrSchema)
	}
	var f File
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("results: results.json does not match schema %d: %v", Schema, jsonErr(data, err))
	}
	if err := Validate(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// WriteJSONFile writes results.json to path.
func WriteJSONFile(path string, f *File) error {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, f); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// ReadJSONFile reads results.json from path; errors name the path.
func ReadJSONFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	f, err := ReadJSON(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// Validate checks what a results file cannot be read without: a run without a transport, a
// loss that is not a fraction (2 where 0.02 was meant), a negative delay, burst or repeat.
// Errors name the run. Figures that are merely implausible (a negative count, two runs of the
// same transport, condition and repeat) are Problems: reported loudly, not refused, so a long
// run's results are never lost to them.
func Validate(f *File) error {
	if f.Schema != Schema {
		return fmt.Errorf("%w: schema %d, want %d", ErrSchema, f.Schema, Schema)
	}
	for i := range f.Runs {
		r := &f.Runs[i]
		at := fmt.Sprintf("runs[%d]", i)
		if r.Transport == "" {
			return fmt.Errorf("results: %s has no transport", at)
		}
		at += " (" + r.Ident() + ")"
		if r.Loss < 0 || r.Loss > 1 || math.IsNaN(r.Loss) {
			return fmt.Errorf("results: %s: loss %g is not a fraction between 0 and 1 (2%% is 0.02)", at, r.Loss)
		}
		if r.DelayMS < 0 || r.Burst < 0 || r.Repeat < 0 {
			return fmt.Errorf("results: %s: negative delay_ms, burst or repeat", at)
		}
	}
	return nil
}

// Problems lists implausible figures in f, each naming its run: negative counts, latencies or
// loads, and runs that repeat another's transport, condition and repeat number (a
// Gilbert-Elliott run without its Burst looks like that). The report shows them with the
// warnings.
func Problems(f *File) []string {
	var out []string
	seen := make(map[runID]int, len(f.Runs))
	for i := range f.Runs {
		r := &f.Runs[i]
		at := fmt.Sprintf("runs[%d] (%s)", i, r.Ident())
		if err := nonNegative(reflect.ValueOf(r).Elem(), at); err != nil {
			out = append(out, err.Error())
		}
		id := runID{r.Key(), r.Repeat}
		if j, dup := seen[id]; dup {
			out = append(out, fmt.Sprintf("results: %s repeats runs[%d] (same transport, delay, loss, burst, stack and repeat); both count as repeats", at, j))
		}
		seen[id] = i
		if r.Delivery != "" && r.Delivery != DeliveryPush && r.Delivery != DeliveryPoll {
			out = append(out, fmt.Sprintf("results: %s: delivery %q is neither %q nor %q (read as pushed)", at, r.Delivery, DeliveryPush, DeliveryPoll))
		}
		if l := r.Late; l != nil && (l.Over100 > 1 || l.Over100 < l.Over200 || l.Over200 < l.Over400 || l.Over400 < l.Over1000) {
			out = append(out, fmt.Sprintf("results: %s: late shares %g, %g, %g, %g are not fractions falling with the threshold", at, l.Over100, l.Over200, l.Over400, l.Over1000))
		}
	}
	if len(f.Runs) > 0 && f.Stack != "" && f.Stack != FileStack(f) {
		out = append(out, fmt.Sprintf("results: the file says stack %q but its runs ran on %q", f.Stack, FileStack(f)))
	}
	return out
}

type runID struct {
	Key
	repeat int
}

// nonNegative reports the first negative number among v's fields (Samples and Drops are
// times and latencies, checked the same way).
func nonNegative(v reflect.Value, at string) error {
	var walk func(v reflect.Value, path string) error
	walk = func(v reflect.Value, path string) error {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				if err := walk(v.Field(i), path+"."+jsonName(v.Type().Field(i))); err != nil {
					return err
				}
			}
		case reflect.Slice:
			if v.Type().Elem().Kind() == reflect.String {
				return nil
			}
			for i := 0; i < v.Len(); i++ {
				if err := walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		case reflect.Pointer:
			if !v.IsNil() {
				return walk(v.Elem(), path)
			}
		case reflect.Int, reflect.Int64:
			if v.Int() < 0 {
				return fmt.Errorf("results: %s: %s is negative (%d)", at, strings.TrimPrefix(path, "."), v.Int())
			}
		case reflect.Float64:
			if strings.HasSuffix(path, ".t") {
				return nil // a sample's time may precede the window (sent in warmup, received after)
			}
			if x := v.Float(); x < 0 {
				return fmt.Errorf("results: %s: %s is negative (%g)", at, strings.TrimPrefix(path, "."), x)
			}
		}
		return nil
	}
	return walk(v, "")
}

// checkFinite names the first NaN or infinite figure in f.
func checkFinite(f *File) error {
	var walk func(v reflect.Value, path string) error
	walk = func(v reflect.Value, path string) error {
		switch v.Kind() {
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				name := jsonName(v.Type().Field(i))
				if v.Type() == reflect.TypeOf(File{}) && name == "runs" {
					continue
				}
				if err := walk(v.Field(i), path+"."+name); err != nil {
					return err
				}
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				if err := walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		case reflect.Pointer:
			if !v.IsNil() {
				return walk(v.Elem(), path)
			}
		case reflect.Float64:
			if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("results: %s is %g; JSON cannot hold it (the lab must write a number)", strings.TrimPrefix(path, "."), x)
			}
		}
		return nil
	}
	if err := walk(reflect.ValueOf(f).Elem(), ""); err != nil {
		return err
	}
	for i := range f.Runs {
		if err := walk(reflect.ValueOf(&f.Runs[i]).Elem(), fmt.Sprintf("runs[%d] (%s)", i, f.Runs[i].Ident())); err != nil {
			return err
		}
	}
	return nil
}

func jsonName(sf reflect.StructField) string {
	tag := sf.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return sf.Name
	}
	return name
}

// jsonErr adds the line and column to a JSON syntax or type error.
func jsonErr(data []byte, err error) string {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
		if te.Field != "" {
			return fmt.Sprintf("field %q holds a JSON %s, want %s (line %d)", te.Field, te.Value, te.Type, lineOf(data, off))
		}
	}
	if off < 0 {
		return err.Error()
	}
	return fmt.Sprintf("%v at line %d", err, lineOf(data, off))
}

func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// SortedRuns returns a copy of f's runs in the stable order: transport (in the order they are
// shown: File.Order, unknown names after it alphabetically), delay, burst, loss, repeat.
func SortedRuns(f *File) []Run {
	out := slices.Clone(f.Runs)
	l := f.lineup()
	slices.SortStableFunc(out, func(a, b Run) int {
		if c := l.compareKeys(a.Key(), b.Key()); c != 0 {
			return c
		}
		return a.Repeat - b.Repeat
	})
	return out
}
