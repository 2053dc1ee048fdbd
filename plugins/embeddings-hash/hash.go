package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

	"github.com/nemoclave/nemoclave/sdk/plugin"
)

// modelName identifies the embedding function; it changes if the hashing
// changes, so stored vectors are never silently compared across versions.
const modelName = "hash-v1"

type config struct {
	Dimensions   int `json:"dimensions"`
	WordNgrams   int `json:"word_ngrams"`
	CharNgramMin int `json:"char_ngram_min"`
	CharNgramMax int `json:"char_ngram_max"`
}

func defaultConfig() config {
	return config{Dimensions: 256, WordNgrams: 2, CharNgramMin: 3, CharNgramMax: 5}
}

func parseConfig(raw json.RawMessage) (config, error) {
	c := defaultConfig()
	if len(raw) == 0 {
		return c, nil
	}
	// Absent or null attributes keep their defaults.
	var in struct {
		Dimensions   *float64 `json:"dimensions"`
		WordNgrams   *float64 `json:"word_ngrams"`
		CharNgramMin *float64 `json:"char_ngram_min"`
		CharNgramMax *float64 `json:"char_ngram_max"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	set := func(dst *int, v *float64) {
		if v != nil {
			*dst = int(*v)
		}
	}
	set(&c.Dimensions, in.Dimensions)
	set(&c.WordNgrams, in.WordNgrams)
	set(&c.CharNgramMin, in.CharNgramMin)
	set(&c.CharNgramMax, in.CharNgramMax)
	return c, nil
}

func (c config) validate() []plugin.Diagnostic {
	var ds []plugin.Diagnostic
	if c.Dimensions < 1 || c.Dimensions > maxDimensions {
		ds = append(ds, plugin.Errorf([]string{"dimensions"}, "dimensions must be between 1 and %d, got %d", maxDimensions, c.Dimensions))
	}
	if c.WordNgrams < 1 || c.WordNgrams > 5 {
		ds = append(ds, plugin.Errorf([]string{"word_ngrams"}, "word_ngrams must be between 1 and 5, got %d", c.WordNgrams))
	}
	if c.CharNgramMin < 0 || c.CharNgramMax > 10 || (c.CharNgramMin > 0 && c.CharNgramMax < c.CharNgramMin) {
		ds = append(ds, plugin.Errorf([]string{"char_ngram_max"}, "need 0 <= char_ngram_min <= char_ngram_max <= 10, got %d..%d", c.CharNgramMin, c.CharNgramMax))
	}
	return ds
}

// tokenize splits text into lower-case runs of letters and digits.
func tokenize(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	})
}

// embed returns the vector of text and the number of word tokens. Each
// feature adds ±weight at a hashed index; the sign from a second hash bit
// keeps collisions unbiased. Character n-grams are taken over "<word>" so
// prefixes and suffixes are distinct features.
func (c config) embed(text string, dims int) ([]float32, int) {
	words := tokenize(text)
	counts := map[string]float64{}
	for n := 1; n <= c.WordNgrams; n++ {
		for i := 0; i+n <= len(words); i++ {
			counts["w:"+strings.Join(words[i:i+n], " ")] += 1 / float64(n)
		}
	}
	if c.CharNgramMin > 0 {
		for _, w := range words {
			r := []rune("<" + w + ">")
			for n := c.CharNgramMin; n <= c.CharNgramMax; n++ {
				for i := 0; i+n <= len(r); i++ {
					counts["c:"+string(r[i:i+n])] += 0.5
				}
			}
		}
	}
	vec := make([]float64, dims)
	for feat, tf := range counts {
		h := fnv.New64a()
		h.Write([]byte(feat))
		sum := h.Sum64()
		idx := int(sum % uint64(dims))
		sign := 1.0
		if sum>>63 == 1 {
			sign = -1
		}
		vec[idx] += sign * (1 + math.Log(tf+1))
	}
	var norm float64
	for _, x := range vec {
		norm += x * x
	}
	out := make([]float32, dims)
	if norm == 0 {
		return out, len(words) // empty text: the zero vector, never NaN
	}
	norm = math.Sqrt(norm)
	for i, x := range vec {
		out[i] = float32(x / norm)
	}
	return out, len(words)
}
