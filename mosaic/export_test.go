package mosaic

// Internals exposed to the external test package (compiled only with tests).

var (
	MultipartFrame    = multipartFrame
	MultipartLength   = multipartLength
	ParseErrorBody    = parseErrorBody
	ParseRetryAfter   = parseRetryAfter
	ParseContentRange = parseContentRange
	OrderedFieldsJSON = orderedFields
)

// RedactTextWithKey scrubs s as the client would for a key.
func RedactTextWithKey(key, s string) string { return newRedactor(key).text(s) }
