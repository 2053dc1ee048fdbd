// Command nemoclave-plugin-dataproc-docs is a built-in dataproc plugin for
// documents: it extracts text from plain text, Markdown, HTML, PDF, DOCX
// and XLSX; chunks text with overlap, preferring paragraph, line and
// sentence boundaries; and generates or converts tables as XLSX and CSV.
//
// Libraries: PDF text comes from github.com/ledongthuc/pdf (pure Go), laid
// out again from glyph positions so words and lines survive; XLSX is read
// and written with github.com/xuri/excelize/v2; HTML is walked with
// golang.org/x/net/html. DOCX needs no library: it is a zip of XML, read
// with archive/zip and encoding/xml (which never fetches external
// entities).
//
// Documents arrive and leave as bytes. This package owns the parsing and
// the generated files; it must not touch the filesystem or the network.
// Inputs are bounded by max_bytes, and decompressed parts of zip formats by
// a multiple of it, so a zip bomb fails instead of exhausting memory.
package main
