package mosaic

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// multipartFrame renders everything of a multipart/form-data body except the file bytes: prefix
// holds every policy field (in order) and the "file" part header, trailer the closing boundary.
// The body is prefix + file + trailer, so its exact length is known before sending anything.
func multipartFrame(fields []FormField, filename, contentType string) (prefix, trailer []byte, formType string, err error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f.Name, f.Value); err != nil {
			return nil, nil, "", fmt.Errorf("form field %q: %w", f.Name, err)
		}
	}
	if contentType == "" {
		contentType = ContentTypeFor(filename)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+quoteFilename(filename)+`"`)
	h.Set("Content-Type", contentType)
	if _, err := mw.CreatePart(h); err != nil {
		return nil, nil, "", fmt.Errorf("file part: %w", err)
	}
	prefix = bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, nil, "", err
	}
	trailer = bytes.Clone(buf.Bytes())
	return prefix, trailer, mw.FormDataContentType(), nil
}

// quoteFilename escapes a file name for a quoted Content-Disposition parameter; line breaks would
// end the header, so they become spaces.
var filenameEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", " ", "\n", " ")

func quoteFilename(name string) string {
	if name == "" {
		name = "video"
	}
	return filenameEscaper.Replace(name)
}

// multipartLength is the exact Content-Length of the form for a file of size bytes.
func multipartLength(prefix, trailer []byte, size int64) int64 {
	return int64(len(prefix)) + size + int64(len(trailer))
}
