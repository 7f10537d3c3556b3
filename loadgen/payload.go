package loadgen

// Payload returns n bytes of JSON-like ASCII text: valid UTF-8, so it can go
// as a text message, and compressible about as much as real application
// messages (3-4x), so compression has realistic work to do.
func Payload(n int) []byte {
	const words = `{"id":4711,"user":"ada","event":"tick","price":101.25,"qty":3,"tags":["a","b"],"ok":true}`
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := 0; i < n; {
		x ^= x << 13 // xorshift: vary the digits so it is not one repeated block
		x ^= x >> 17
		x ^= x << 5
		w := words[x%uint32(len(words)/2):]
		i += copy(b[i:], w[:min(len(w), 12+int(x>>24)%20)])
		if i < n {
			b[i] = '0' + byte(x%10)
			i++
		}
	}
	return b
}
