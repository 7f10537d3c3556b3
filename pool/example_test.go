package pool_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tetherws/tether"
	"github.com/tetherws/tether/pool"
)

func Example() {
	ctx := context.Background()
	p, err := pool.New(ctx, []string{"wss://a.example.com/ws", "wss://b.example.com/ws"}, &pool.Options{
		Size:    8,
		Balance: pool.LeastLoaded,
		Dial: tether.DialOptions{ConnOptions: tether.ConnOptions{
			PingInterval: 10 * time.Second, PingTimeout: 5 * time.Second}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	if err := p.Write(ctx, tether.Text, []byte("hello")); err != nil {
		fmt.Println(err)
	}
	fmt.Println(p.Stats().Healthy, "healthy connections")
}
