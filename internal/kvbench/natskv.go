package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsSys is a JetStream KV bucket with three replicas on the cluster's
// three servers, and a client connected to each server. It owns the
// connections.
type natsSys struct {
	c       *cluster
	storage jetstream.StorageType
	conns   []*nats.Conn
	js      []jetstream.JetStream
}

func startNATS(ctx context.Context, c *cluster, fsync, join bool) (*natsSys, error) {
	s := &natsSys{c: c, storage: jetstream.MemoryStorage}
	if fsync {
		s.storage = jetstream.FileStorage
	}
	for i := range 3 {
		if err := s.connect(c, i); err != nil {
			s.close()
			return nil, err
		}
	}
	buckets := []string{"bench"}
	if join {
		buckets = append(buckets, "join")
	}
	for _, b := range buckets {
		if _, err := s.bucket(ctx, b); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *natsSys) connect(c *cluster, i int) error {
	nc, err := nats.Connect(c.Servers[i].ClientURL())
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return err
	}
	s.conns = append(s.conns, nc)
	s.js = append(s.js, js)
	return nil
}

// bucket creates the bucket name with three replicas, retrying while the
// JetStream cluster is still placing it.
func (s *natsSys) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	for {
		kv, err := s.js[0].CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: name, Replicas: 3, Storage: s.storage, History: 1,
		})
		if err == nil {
			return kv, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("nats kv bucket %s: %w", name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *natsSys) close() {
	for _, nc := range s.conns {
		nc.Close()
	}
}

// leader returns the index of the server that leads the bucket's stream.
func (s *natsSys) leader(ctx context.Context, bucket string) (int, error) {
	for {
		st, err := s.js[0].Stream(ctx, "KV_"+bucket)
		if err == nil {
			info, err2 := st.Info(ctx)
			err = err2
			if err == nil && info.Cluster != nil {
				if i := s.c.index(info.Cluster.Leader); i >= 0 {
					return i, nil
				}
			}
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("nats: no stream leader: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// client returns the bucket as seen from the leader's server or from
// another one, and the leader's index.
func (s *natsSys) client(ctx context.Context, atLeader bool) (jetstream.KeyValue, int, error) {
	l, err := s.leader(ctx, "bench")
	if err != nil {
		return nil, 0, err
	}
	i := l
	if !atLeader {
		i = (l + 1) % 3
	}
	kv, err := s.js[i].KeyValue(ctx, "bench")
	return kv, l, err
}

func (s *natsSys) put(kv jetstream.KeyValue, prefix string) op {
	val := value(0)
	return func(ctx context.Context, w, i int) (int, error) {
		_, err := kv.Put(ctx, fmt.Sprintf("%s-%d-%d", prefix, w, i), val)
		return 0, err
	}
}

// get reads one of getKeys keys (a direct get, which any replica may
// answer).
func (s *natsSys) get(ctx context.Context, kv jetstream.KeyValue) (op, error) {
	for k := range getKeys {
		if _, err := kv.Put(ctx, getKey(k), value(uint64(k))); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) (int, error) {
		_, err := kv.Get(ctx, getKey(i%getKeys))
		return 0, err
	}, nil
}

// cas reads a hot key and updates it at the revision read, again until
// one applies.
func (s *natsSys) cas(ctx context.Context, kv jetstream.KeyValue) (op, error) {
	for k := range hotKeys {
		if _, err := kv.Put(ctx, hotKey(k), value(0)); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, w, i int) (int, error) {
		key := hotKey((w*7919 + i*31) % hotKeys)
		for retries := 0; ; retries++ {
			e, err := kv.Get(ctx, key)
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue // a direct get from a replica that has not applied the key yet
			}
			if err != nil {
				return retries, err
			}
			_, err = kv.Update(ctx, key, value(uint64(w)<<32|uint64(i)), e.Revision())
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				return retries, err
			}
		}
	}, nil
}

// join writes n keys into the bucket join, then times a client on
// server srv (a new server without JetStream) that watches every key
// until it has received them all.
func (s *natsSys) join(ctx context.Context, srv int, n int) (time.Duration, error) {
	if err := s.fill(ctx, n); err != nil {
		return 0, fmt.Errorf("nats join: writing: %w", err)
	}
	nc, err := nats.Connect(s.c.Servers[srv].ClientURL())
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	start := time.Now()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	kv, err := js.KeyValue(ctx, "join")
	if err != nil {
		return 0, fmt.Errorf("nats join: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return 0, fmt.Errorf("nats join: watch: %w", err)
	}
	defer w.Stop()
	got := 0
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return 0, errors.New("nats join: watch ended")
			}
			if e == nil {
				// The end of the initial values, as the consumer counted
				// them when it was made: it may count fewer than were
				// acknowledged, so this waits for every key instead.
				continue
			}
			if got++; got == n {
				return time.Since(start), nil
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("nats join: %d of %d keys", got, n)
		}
	}
}

// fill writes n keys into the bucket join, a thousand published at once;
// a key whose acknowledgement does not come within 5 s is published again
// and waited for.
func (s *natsSys) fill(ctx context.Context, n int) error {
	val := value(0)
	subject := func(i int) string { return fmt.Sprintf("$KV.join.%016d", i) }
	for from := 0; from < n; from += 1000 {
		var acks []jetstream.PubAckFuture
		for i := from; i < min(n, from+1000); i++ {
			a, err := s.js[0].PublishAsync(subject(i), val)
			if err != nil {
				return err
			}
			acks = append(acks, a)
		}
		timeout := time.NewTimer(5 * time.Second)
		expired := false
		for k, a := range acks {
			if !expired {
				select {
				case <-a.Ok():
					continue
				case err := <-a.Err():
					return err
				case <-ctx.Done():
					return ctx.Err()
				case <-timeout.C:
					expired = true
				}
			} else {
				select {
				case <-a.Ok():
					continue
				default:
				}
			}
			if _, err := s.js[0].Publish(ctx, subject(from+k), val); err != nil {
				return err
			}
		}
	}
	return nil
}
