package api

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"strings"

	"github.com/labstack/echo/v4"
)

// The farm map compresses itself, a layer at a time, in the goroutines that draw the layers: so
// the layers that arrive first are compressed while the slowest query still runs, instead of
// the whole map being compressed after it (the route is exempt from the gzip middleware).
//
// Each layer is compressed as raw DEFLATE ending with a sync flush, which leaves the stream at a
// byte boundary with no block marked final; such pieces concatenate into one valid DEFLATE
// stream (the technique of pgzip). The few bytes between layers go in stored blocks, the stream
// ends with an empty final block, and the gzip header and trailer (CRC-32 and size of the whole)
// wrap it: one ordinary gzip member that any client reads.

// mapGzipLevel matches the gzip middleware's level (routes.go).
const mapGzipLevel = 4

// mapGzipMinLength: smaller maps are sent as they are, like the middleware's MinLength.
const mapGzipMinLength = 1024

// acceptsGzip reports whether the client takes gzip, as the middleware decides it.
func acceptsGzip(c echo.Context) bool {
	return strings.Contains(c.Request().Header.Get(echo.HeaderAcceptEncoding), "gzip")
}

// deflateLayer compresses one layer's JSON into a pooled buffer, as raw DEFLATE ending with a
// sync flush.
func (s *Server) deflateLayer(plain []byte) (*[]byte, error) {
	out := s.mapBuffer()
	buf := bytes.NewBuffer((*out)[:0])
	fw, _ := s.mapFlate.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriter(buf, mapGzipLevel); err != nil {
			return nil, err
		}
	} else {
		fw.Reset(buf)
	}
	defer s.mapFlate.Put(fw)
	if _, err := fw.Write(plain); err != nil {
		return nil, err
	}
	if err := fw.Flush(); err != nil { // sync flush: byte-aligned, not final
		return nil, err
	}
	*out = buf.Bytes()
	return out, nil
}

// gzipParts writes one gzip member whose content is the concatenation of parts; deflated[i] is
// parts[i] already compressed by deflateLayer, or nil for a part to store as it is (parts left
// as they are must be shorter than 64 KiB).
func gzipParts(w interface{ Write([]byte) (int, error) }, parts, deflated [][]byte) error {
	head := []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff} // deflate, no flags or time, unknown OS
	if _, err := w.Write(head); err != nil {
		return err
	}
	var crc uint32
	var size uint32
	for i, p := range parts {
		crc = crc32.Update(crc, crc32.IEEETable, p)
		size += uint32(len(p))
		block := deflated[i]
		if block == nil {
			block = storedBlock(p, false)
		}
		if _, err := w.Write(block); err != nil {
			return err
		}
	}
	tail := storedBlock(nil, true)
	tail = binary.LittleEndian.AppendUint32(tail, crc)
	tail = binary.LittleEndian.AppendUint32(tail, size) // ISIZE: the size modulo 2^32
	_, err := w.Write(tail)
	return err
}

// storedBlock is a DEFLATE block holding p (< 64 KiB) as it is, for a stream at a byte
// boundary: header bits BFINAL and BTYPE 00 padded to a byte, then LEN and its complement.
func storedBlock(p []byte, final bool) []byte {
	var h byte
	if final {
		h = 1
	}
	n := uint16(len(p))
	b := append(make([]byte, 0, 5+len(p)), h, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
	return append(b, p...)
}
