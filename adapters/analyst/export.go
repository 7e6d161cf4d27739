package analyst

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/cxledger/cxledger/projections/script"
)

// Tables: a partitioned projection's states (or a query's) become one row
// per partition, so that they open in a spreadsheet or DuckDB. The first
// column is "partition"; then one column per top-level member of the
// states (in name order, the union over every state): a number column
// when every value of it is a number, a boolean one when every value is a
// boolean, otherwise text (strings as they are, objects and arrays as
// JSON). A state that is not an object goes whole into a column "state".

// Formats an export or a query answers in.
const (
	FormatJSON    = "json"
	FormatCSV     = "csv"
	FormatParquet = "parquet"
)

// ContentType returns the media type of format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv; charset=utf-8"
	case FormatParquet:
		return "application/vnd.apache.parquet"
	}
	return "application/json"
}

// CheckFormat refuses a format other than json, csv and parquet.
func CheckFormat(format string) error {
	switch format {
	case FormatJSON, FormatCSV, FormatParquet:
		return nil
	}
	return &InvalidError{Message: fmt.Sprintf("format %q: want json, csv or parquet", format)}
}

type column struct {
	name string
	kind byte // 'n' number, 'b' boolean, 's' text
}

type table struct {
	cols []column
	rows []map[string]json.RawMessage
	keys []string
}

func tabulate(parts []script.Partition) (*table, error) {
	t := &table{}
	kinds := map[string]byte{}
	for _, p := range parts {
		row := map[string]json.RawMessage{}
		trimmed := bytes.TrimSpace(p.State)
		if len(trimmed) > 0 && trimmed[0] == '{' {
			if err := json.Unmarshal(trimmed, &row); err != nil {
				return nil, fmt.Errorf("state of %q: %w", p.Key, err)
			}
		} else {
			row["state"] = trimmed
		}
		for k, v := range row {
			kinds[k] = merge(kinds[k], kindOf(v))
		}
		t.rows = append(t.rows, row)
		t.keys = append(t.keys, p.Key)
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		if k != "partition" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		t.cols = append(t.cols, column{name: n, kind: kinds[n]})
	}
	return t, nil
}

func kindOf(v json.RawMessage) byte {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return 0 // says nothing about the column
	case v[0] == 't' || v[0] == 'f':
		return 'b'
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		return 'n'
	}
	return 's'
}

func merge(a, b byte) byte {
	switch {
	case a == 0:
		return b
	case b == 0 || a == b:
		return a
	}
	return 's'
}

// text is a value as a CSV cell: strings unquoted, the rest as JSON,
// null as empty.
func text(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

// WriteCSV writes parts as CSV with a header row.
func WriteCSV(w io.Writer, parts []script.Partition) error {
	t, err := tabulate(parts)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	header := []string{"partition"}
	for _, c := range t.cols {
		header = append(header, c.name)
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for i, row := range t.rows {
		rec := []string{t.keys[i]}
		for _, c := range t.cols {
			rec = append(rec, text(row[c.name]))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// WriteParquet writes parts as a Parquet file (number columns as DOUBLE,
// booleans as BOOLEAN, the rest as UTF-8 strings; absent values null).
func WriteParquet(w io.Writer, parts []script.Partition) error {
	t, err := tabulate(parts)
	if err != nil {
		return err
	}
	group := parquet.Group{"partition": parquet.String()}
	for _, c := range t.cols {
		var node parquet.Node
		switch c.kind {
		case 'n':
			node = parquet.Leaf(parquet.DoubleType)
		case 'b':
			node = parquet.Leaf(parquet.BooleanType)
		default:
			node = parquet.String()
		}
		group[c.name] = parquet.Optional(node)
	}
	// Rows are built value by value: a map row would write false and 0 as
	// null (parquet-go treats a zero value of an optional column so).
	schema := parquet.NewSchema("analyst_projection", group)
	pw := parquet.NewWriter(w, schema)
	fields := schema.Fields() // in column order
	batch := make([]parquet.Row, 0, 1024)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := pw.WriteRows(batch)
		batch = batch[:0]
		return err
	}
	kinds := map[string]byte{}
	for _, c := range t.cols {
		kinds[c.name] = c.kind
	}
	for i, row := range t.rows {
		rec := make(parquet.Row, 0, len(fields))
		for col, f := range fields {
			name := f.Name()
			if name == "partition" {
				rec = append(rec, parquet.ValueOf(t.keys[i]).Level(0, 0, col))
				continue
			}
			v := bytes.TrimSpace(row[name])
			if len(v) == 0 || string(v) == "null" {
				rec = append(rec, parquet.Value{}.Level(0, 0, col))
				continue
			}
			var val parquet.Value
			switch kinds[name] {
			case 'n':
				x, err := strconv.ParseFloat(string(v), 64)
				if err != nil {
					return fmt.Errorf("partition %q, %s: %w", t.keys[i], name, err)
				}
				val = parquet.DoubleValue(x)
			case 'b':
				val = parquet.BooleanValue(string(v) == "true")
			default:
				val = parquet.ByteArrayValue([]byte(text(v)))
			}
			rec = append(rec, val.Level(0, 1, col))
		}
		if batch = append(batch, rec); len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return pw.Close()
}

// Write writes a result in format: JSON as the API answers it, CSV and
// Parquet as a table (an unpartitioned state is one row, partition "").
func Write(w io.Writer, format string, res script.Result) error {
	parts := res.Partitions
	if !res.Partitioned {
		parts = []script.Partition{{Key: "", State: res.State}}
	}
	switch format {
	case FormatCSV:
		return WriteCSV(w, parts)
	case FormatParquet:
		return WriteParquet(w, parts)
	}
	out := ResultJSON{Partitioned: res.Partitioned, State: res.State}
	if res.Partitioned {
		out.State = nil
		out.Partitions = make([]PartitionJSON, len(parts))
		for i, p := range parts {
			out.Partitions[i] = PartitionJSON{Key: p.Key, State: p.State}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// ResultJSON is a query's result, or a projection's state, in JSON.
type ResultJSON struct {
	Partitioned bool            `json:"partitioned"`
	Position    uint64          `json:"position,omitempty"`
	State       json.RawMessage `json:"state,omitempty"`
	Partitions  []PartitionJSON `json:"partitions,omitempty"`
}

// PartitionJSON is one partition's state in JSON.
type PartitionJSON struct {
	Key   string          `json:"key"`
	State json.RawMessage `json:"state"`
}
