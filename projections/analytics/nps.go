package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cxledger/cxledger/projections"
)

// NPSFigures is a Net Promoter Score over a set of answers.
type NPSFigures struct {
	// Responses counts the answers; Promoters answered 9–10, Passives 7–8
	// and Detractors 0–6.
	Responses  int `json:"responses"`
	Promoters  int `json:"promoters"`
	Passives   int `json:"passives"`
	Detractors int `json:"detractors"`
	// Score is 100 × (Promoters − Detractors) ÷ Responses, from −100 to
	// 100; 0 without responses.
	Score float64 `json:"score"`
}

func (f *NPSFigures) add(score int) {
	f.Responses++
	switch {
	case score >= 9:
		f.Promoters++
	case score >= 7:
		f.Passives++
	default:
		f.Detractors++
	}
}

func (f *NPSFigures) finish() {
	if f.Responses > 0 {
		f.Score = 100 * float64(f.Promoters-f.Detractors) / float64(f.Responses)
	}
}

// SurveyNPS is the NPS of one survey.
type SurveyNPS struct {
	Survey string `json:"survey"`
	NPSFigures
}

// NPSReport is the Net Promoter Score of the customer base.
type NPSReport struct {
	// Overall counts each customer once, with their latest answer to any
	// survey.
	Overall NPSFigures `json:"overall"`
	// Surveys counts, per survey (by name), each customer's latest answer
	// to that survey.
	Surveys []SurveyNPS `json:"surveys"`
}

// NPS computes the Net Promoter Score from the latest answer of each
// customer (see NPSReport): a customer who answers every week is one
// voice, not fifty-two. Forgotten customers' answers are gone.
func NPS(ctx context.Context, r projections.Reader) (NPSReport, error) {
	var rep NPSReport
	surveys := map[string]*NPSFigures{}
	err := r.Scan(ctx, customerPrefix, "", func(key string, value []byte) (bool, error) {
		var rec customerRecord
		if err := json.Unmarshal(value, &rec); err != nil {
			return false, fmt.Errorf("analytics: decode %q: %w", key, err)
		}
		if a, ok := latestAnswer(rec); ok {
			rep.Overall.add(a.Score)
		}
		for name, a := range rec.Surveys {
			f := surveys[name]
			if f == nil {
				f = &NPSFigures{}
				surveys[name] = f
			}
			f.add(a.Score)
		}
		return true, nil
	})
	if err != nil {
		return NPSReport{}, err
	}
	rep.Overall.finish()
	rep.Surveys = []SurveyNPS{}
	for _, name := range sortedKeys(surveys) {
		f := surveys[name]
		f.finish()
		rep.Surveys = append(rep.Surveys, SurveyNPS{Survey: name, NPSFigures: *f})
	}
	return rep, nil
}

// latestAnswer returns the customer's most recent answer to any survey;
// answers at the same instant go to the survey whose name sorts last.
func latestAnswer(rec customerRecord) (answer, bool) {
	var best answer
	found := false
	for _, name := range sortedKeys(rec.Surveys) {
		a := rec.Surveys[name]
		if !found || !a.At.Before(best.At) {
			best, found = a, true
		}
	}
	return best, found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
