package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cxledger/cxledger/adapters/analyst"
	"github.com/cxledger/cxledger/adapters/httpapi"
	"github.com/cxledger/cxledger/projections/script"
)

// Analyst projections and one-time queries over the API (what `cxledger
// projections --server` and `cxledger query --server` use).

// analystError maps the analyst routes' problems to adapters/analyst's
// errors, so that the CLI tells them apart alike locally and remotely.
func analystError(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch e.Problem.Slug() {
	case "invalid-script":
		return fmt.Errorf("%w: %w", err, &analyst.InvalidError{Line: e.Problem.Line, Column: e.Problem.Column, Message: e.Problem.Detail})
	case "exists":
		return fmt.Errorf("%w: %w", err, analyst.ErrExists)
	case "not-found":
		return fmt.Errorf("%w: %w", err, analyst.ErrNotFound)
	}
	return err
}

// DefineProjection creates (update false) or updates an analyst
// projection and waits until it serves reads at the head, calling progress
// (may be nil) with the server's progress events. A script that stops is
// an *analyst.Failed.
func (c *Client) DefineProjection(ctx context.Context, name, source string, update bool, progress func(analyst.Progress)) (analyst.Definition, error) {
	method, path := http.MethodPost, "/v1/projections"
	body := httpapi.ProjectionRequest{Name: name, Source: source}
	if update {
		method, path, body.Name = http.MethodPut, "/v1/projections/"+url.PathEscape(name), ""
	}
	var def analyst.Definition
	err := c.stream(ctx, method, path, body, func(event string, data []byte) (bool, error) {
		switch event {
		case "progress":
			var p analyst.Progress
			if err := json.Unmarshal(data, &p); err == nil && progress != nil {
				progress(p)
			}
		case "done":
			return true, json.Unmarshal(data, &def)
		case "failed":
			f := &analyst.Failed{}
			if err := json.Unmarshal(data, f); err != nil {
				return true, err
			}
			return true, f
		case "error":
			var p httpapi.Problem
			_ = json.Unmarshal(data, &p)
			return true, analystError(&Error{Problem: p, cause: cause(p)})
		}
		return false, nil
	})
	return def, err
}

// stream sends a request asking for Server-Sent Events and calls fn for
// each event until fn says it is the last one.
func (c *Client) stream(ctx context.Context, method, path string, body any, fn func(event string, data []byte) (last bool, err error)) error {
	req, err := c.request(ctx, method, path, nil, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return analystError(decodeProblem(resp))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			last, err := fn(event, []byte(strings.TrimPrefix(line, "data: ")))
			if last || err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return fmt.Errorf("%s %s: %w", method, path, io.ErrUnexpectedEOF)
}

// DeleteProjection deletes an analyst projection.
func (c *Client) DeleteProjection(ctx context.Context, name string) error {
	return analystError(c.do(ctx, http.MethodDelete, "/v1/projections/"+url.PathEscape(name), nil, nil, nil))
}

// ProjectionState reads an analyst projection's state: whole, one
// partition, or a page of partitions (limit 0: the server's default).
func (c *Client) ProjectionState(ctx context.Context, name, partition, after string, limit int) (httpapi.StateOut, error) {
	q := url.Values{}
	if partition != "" {
		q.Set("partition", partition)
	}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out httpapi.StateOut
	err := c.do(ctx, http.MethodGet, "/v1/projections/"+url.PathEscape(name)+"/state", q, nil, &out)
	return out, analystError(err)
}

// Projections lists the read models the server runs, analysts' included.
func (c *Client) Projections(ctx context.Context) ([]httpapi.ProjectionStatus, error) {
	var out struct {
		Projections []httpapi.ProjectionStatus `json:"projections"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/projections", url.Values{"digest": {"true"}}, nil, &out)
	return out.Projections, err
}

// ExportProjection writes an analyst projection's partitions in format
// (csv, parquet or json) to w.
func (c *Client) ExportProjection(ctx context.Context, name, format string, w io.Writer) error {
	req, err := c.request(ctx, http.MethodGet, "/v1/projections/"+url.PathEscape(name)+"/export", url.Values{"format": {format}}, nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return analystError(decodeProblem(resp))
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export %s: %w", name, err)
	}
	return nil
}

// Query runs a script once over the log on the server, calling progress
// (may be nil) as it goes, and returns its result and the position it ran
// through. Closing ctx stops it on the server too.
func (c *Client) Query(ctx context.Context, req httpapi.QueryRequest, progress func(script.Progress)) (script.Result, uint64, error) {
	req.Format = analyst.FormatJSON
	var res analyst.ResultJSON
	err := c.stream(ctx, http.MethodPost, "/v1/queries", req, func(event string, data []byte) (bool, error) {
		switch event {
		case "progress":
			var p script.Progress
			if err := json.Unmarshal(data, &p); err == nil && progress != nil {
				progress(p)
			}
		case "result":
			return true, json.Unmarshal(data, &res)
		case "failed":
			f := &analyst.Failed{}
			if err := json.Unmarshal(data, f); err != nil {
				return true, err
			}
			return true, f
		case "error":
			var p httpapi.Problem
			_ = json.Unmarshal(data, &p)
			return true, analystError(&Error{Problem: p, cause: cause(p)})
		}
		return false, nil
	})
	if err != nil {
		return script.Result{}, 0, err
	}
	out := script.Result{Partitioned: res.Partitioned, State: res.State}
	for _, p := range res.Partitions {
		out.Partitions = append(out.Partitions, script.Partition{Key: p.Key, State: p.State})
	}
	return out, res.Position, nil
}
