package tether

import (
	"context"
	"encoding/json"
	"fmt"
)

// ReadJSON reads the next message and decodes it as JSON into v, as
// gorilla's Conn.ReadJSON and coder's wsjson.Read do. The message may be
// text or binary (some peers send JSON as binary frames); it is bounded by
// ReadLimit like any message. A message that is not valid JSON for v is
// consumed and reported, and leaves the connection open: the next call
// reads the next message.
//
// ReadJSON and WriteJSON live in this package rather than a subpackage
// because they are two small functions over Read and Write, this package
// already depends on encoding/json, and one import is what a user of
// gorilla's ReadJSON expects.
func ReadJSON(ctx context.Context, c *Conn, v any) error {
	_, p, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("tether: ReadJSON: %w", err)
	}
	return nil
}

// WriteJSON encodes v as JSON and sends it as one text message. It is safe
// to call concurrently with other writes, as Write is; an encoding error
// sends nothing.
func WriteJSON(ctx context.Context, c *Conn, v any) error {
	p, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tether: WriteJSON: %w", err)
	}
	return c.Write(ctx, Text, p)
}
