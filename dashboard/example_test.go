package dashboard_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/dashboard"
)

// The dashboard mounted under a prefix of an existing server, for holders of
// a token only. The page uses relative URLs, so any prefix works.
func Example() {
	reg := tether.NewRegistry() // or leave Registry nil for tether.DefaultRegistry
	dash := dashboard.New(dashboard.Options{
		Registry:  reg,
		Authorize: dashboard.BearerToken("s3cret"), // or dashboard.Loopback
	})
	defer dash.Close()

	mux := http.NewServeMux()
	mux.Handle("/debug/tether/", http.StripPrefix("/debug/tether", dash))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest("GET", srv.URL+"/debug/tether/api/connections", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(resp.Status, " ", string(body))
	// Output: 200 OK []
}
