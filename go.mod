module github.com/tetherws/tether

go 1.26.8

require (
	github.com/google/uuid v1.6.0
	golang.org/x/net v0.62.0
)

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
