package script

import (
	"errors"
	"strings"
	"testing"
)

// TestHostileSources: pathological scripts are refused quickly with a
// *CompileError instead of exhausting the parser.
func TestHostileSources(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"deep_brackets", strings.Repeat("[", 60000), "nest deeper than 256"},
		{"deep_objects", strings.Repeat("{a:", 20000), "nest deeper than 256"},
		{"deep_balanced", "x=" + strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "nest deeper than 256"},
		{"unary_chain", strings.Repeat("- ", MaxSourceBytes/2-1) + "1", ""},
		{"too_big", strings.Repeat(" ", MaxSourceBytes+1), "over the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.name, tt.src, Limits{})
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.Contains(ce.Message, tt.want) {
				t.Errorf("got %v, want a *CompileError with %q", err, tt.want)
			}
		})
	}
}
