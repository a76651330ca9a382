package kube

import (
	"context"
	"errors"
	"net/http"
)

// Outages notices requests of a client that fail below HTTP (connection
// refused, reset, timed out): the sign of an API server the client cannot
// reach. Informers hide such failures behind their own backoff, so the
// agent learns of them here and probes the server itself.
type Outages struct{ ch chan struct{} }

// NewOutages returns an observer to install with Wrap.
func NewOutages() *Outages { return &Outages{ch: make(chan struct{}, 1)} }

// Errors receives a value after one or more transport errors (coalesced).
func (o *Outages) Errors() <-chan struct{} { return o.ch }

// Wrap is a rest.Config.WrapTransport function.
func (o *Outages) Wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err != nil && !errors.Is(err, context.Canceled) && req.Context().Err() == nil {
			select {
			case o.ch <- struct{}{}:
			default:
			}
		}
		return resp, err
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
