package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
)

// decodeJSON reads the request body as one JSON object into v, strictly:
// unknown fields, duplicate fields, strings that are not valid UTF-8 or
// hold NUL characters, wrong types, malformed JSON, anything but an object
// and trailing data are *models.FieldError naming the field; a body over
// the limit is *http.MaxBytesError.
func decodeJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return mbe
		}
		return fmt.Errorf("read request body: %w", err)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return invalid("body", "the request body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return invalid("body", "the request body must be a JSON object")
	}
	if err := checkJSONText(trimmed); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, v)
	}
	if dec.More() {
		return invalid("body", "the request body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("body", "the request body must hold exactly one JSON object")
	}
	return nil
}

// jsonFrame is an object or array being walked by checkJSONText.
type jsonFrame struct {
	object  bool
	wantKey bool            // object: the next string token is a key
	key     string          // object: the key of the value being read
	keys    map[string]bool // object: the keys seen
}

// checkJSONText walks a JSON document token by token and refuses what
// encoding/json lets through silently: a key given twice (the last one
// would win), a string that is not valid UTF-8 (it would be changed to
// U+FFFD) and a NUL character (the databases refuse it). The error names
// the field ("window.width"; an array's items are named by the array).
// Malformed JSON is left to the decoding that follows, which explains it.
func checkJSONText(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var stack []*jsonFrame
	field := func() string {
		var parts []string
		for _, f := range stack {
			if f.object && f.key != "" {
				parts = append(parts, f.key)
			}
		}
		if len(parts) == 0 {
			return "body"
		}
		return strings.Join(parts, ".")
	}
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF, or malformed JSON: reported by the decoding
		}
		raw := body[prev:dec.InputOffset()]
		prev = dec.InputOffset()
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		isKey := top != nil && top.object && top.wantKey
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.object {
					top.wantKey = true // after this value, a key
				}
				stack = append(stack, &jsonFrame{object: t == '{', wantKey: true, keys: map[string]bool{}})
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		case string:
			if isKey {
				top.key = t
			}
			name := field()
			switch {
			case !utf8.Valid(raw):
				return invalid(name, "%s is not valid UTF-8", name)
			case strings.ContainsRune(t, 0):
				return invalid(name, "%s must not contain NUL characters (\\u0000)", name)
			}
			if isKey {
				if top.keys[t] {
					return invalid(name, "%s is given twice; give each field once", name)
				}
				top.keys[t], top.wantKey = true, false
				continue
			}
		}
		if top != nil && top.object {
			top.wantKey = true
		}
	}
}

// jsonError explains a decoding error, naming the field when there is one.
func jsonError(err error, v any) error {
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return invalid("body", "malformed JSON at byte %d: %s", syntax.Offset, syntax.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "malformed JSON: the body ends early")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return invalid("body", "the request body must be a JSON object")
		}
		return invalid(field, "%s must be %s, not a JSON %s", field, jsonKind(typeErr.Type), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return invalid(field, "unknown field %q; allowed fields: %s", field, strings.Join(jsonFields(reflect.TypeOf(v)), ", "))
	}
	return invalid("body", "malformed JSON: %v", err)
}

// jsonKind names a Go type as a JSON type for messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "a " + t.Kind().String()
}

// jsonFields lists the top-level JSON field names of a struct type.
func jsonFields(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
