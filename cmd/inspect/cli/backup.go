package cli

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/mosaik-go/mosaik/collections"
	"github.com/mosaik-go/mosaik/internal/inspectwire"
	"github.com/mosaik-go/mosaik/rsm"
)

// A backup file holds a collection's state at one version, as inspect dump
// reads it: the magic, a header, one record per entry (an
// inspectwire.Change insert), an end mark, and the SHA-256 of everything
// before it. Each header and record is a 4-byte big-endian
// length and its CBOR; the end mark is a zero length.
var backupMagic = [8]byte{'M', 'O', 'S', 'B', 'A', 'K', '0', '1'}

const (
	backupMaxHeader = 64 << 10
	// backupMaxRecord bounds one entry: a key and a value at their limits,
	// with room for their framing.
	backupMaxRecord = collections.MaxKeySize + collections.MaxValueSize + 4096
)

// backupHeader describes a backup. Its CBOR keys are its format.
type backupHeader struct {
	Format  string    `cbor:"format" json:"format"`
	ID      string    `cbor:"id" json:"id"`
	Kind    string    `cbor:"kind" json:"kind"`
	Name    string    `cbor:"name" json:"name"`
	Types   string    `cbor:"types" json:"types"`
	Version uint64    `cbor:"version" json:"version"`
	Entries int       `cbor:"entries" json:"entries"`
	From    string    `cbor:"from" json:"from"`
	Saved   time.Time `cbor:"saved" json:"saved"`
}

// backupFormat names the records' encoding: v2 records are
// inspectwire.Change (integer keys); v1 records, written before, had Go
// field names as keys. verify reads only the framing, so it accepts both.
const (
	backupFormat   = "mosaik.backup.v2"
	backupFormatV1 = "mosaik.backup.v1"
)

func snapshotCmd(o *options) *cobra.Command {
	cmd := parent(&cobra.Command{
		Use:   "snapshot",
		Short: "Save a collection's state to a file, or check such a file",
	})
	var page int
	save := &cobra.Command{
		Use:   "save NAME FILE",
		Short: "Save a collection's state at one version to FILE, with a checksum",
		Long: "Read the collection's state at one version from the member that applied the most, as dump\n" +
			"does, and write it to FILE (mode 0600: it holds the contents) with a header and a SHA-256.\n" +
			"FILE is written beside itself and renamed once complete. Check it with inspect snapshot verify.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCollection(cmd, o, args[0], func(src *source) error {
				h, sum, err := src.save(cmd, args[1], page)
				if err != nil {
					return err
				}
				return printBackup(cmd.OutOrStdout(), o, "saved", args[1], h, sum)
			})
		},
	}
	save.Flags().IntVar(&page, "page", 1000, "entries per request")
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a file written by snapshot save: its checksum, framing and entry count",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, sum, err := readBackup(f)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			return printBackup(cmd.OutOrStdout(), o, "verified", args[0], h, sum)
		},
	}
	cmd.AddCommand(save, verify)
	return cmd
}

func printBackup(w io.Writer, o *options, what, file string, h backupHeader, sum []byte) error {
	if o.json {
		return printJSON(w, struct {
			File   string       `json:"file"`
			Header backupHeader `json:"header"`
			SHA256 string       `json:"sha256"`
		}{file, h, hex.EncodeToString(sum)})
	}
	fmt.Fprintf(w, "%s %s: %s %s [%s] at version %d, %d entries, read from %s\nsha256 %x\n",
		what, file, h.Kind, h.Name, h.Types, h.Version, h.Entries, h.From[:min(8, len(h.From))], sum)
	return nil
}

// backupWriter frames records and hashes what it writes.
type backupWriter struct {
	w   *bufio.Writer
	sum hash.Hash
}

func (b *backupWriter) write(p []byte) error {
	_, err := io.MultiWriter(b.w, b.sum).Write(p)
	return err
}

func (b *backupWriter) record(p []byte) error {
	if err := b.write(binary.BigEndian.AppendUint32(nil, uint32(len(p)))); err != nil {
		return err
	}
	return b.write(p)
}

// save writes the collection's state to file, through a temporary file in
// its directory renamed once synced.
func (s *source) save(cmd *cobra.Command, file string, page int) (backupHeader, []byte, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return backupHeader{}, nil, err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return backupHeader{}, nil, err
	}
	bw := &backupWriter{w: bufio.NewWriter(tmp), sum: sha256.New()}
	h := backupHeader{Format: backupFormat, ID: s.g.ID.String(), Kind: s.g.kind(), Name: s.g.name(), Types: s.g.types(),
		From: s.peer.String(), Saved: time.Now().UTC()}
	n, first := 0, true
	err = s.pages(cmd.Context(), page, cmd.ErrOrStderr(), func(r inspectwire.Reply) error {
		if first {
			first = false
			h.Version, h.Entries = r.Version, r.Total
			hb, err := rsm.Marshal(h)
			if err != nil {
				return err
			}
			if err := bw.write(backupMagic[:]); err != nil {
				return err
			}
			if err := bw.record(hb); err != nil {
				return err
			}
		}
		for _, it := range r.Items {
			b, err := inspectwire.Marshal(it)
			if err != nil {
				return err
			}
			if len(b) > backupMaxRecord { // verify would refuse the file
				return fmt.Errorf("node %s sent an entry of %d bytes, over the limit of %d", s.peer.Short(), len(b), backupMaxRecord)
			}
			if err := bw.record(b); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return h, nil, err
	}
	if n != h.Entries {
		return h, nil, fmt.Errorf("the member announced %d entries and sent %d", h.Entries, n)
	}
	if err := bw.write([]byte{0, 0, 0, 0}); err != nil {
		return h, nil, err
	}
	sum := bw.sum.Sum(nil)
	if _, err := bw.w.Write(sum); err != nil {
		return h, nil, err
	}
	if err := bw.w.Flush(); err != nil {
		return h, nil, err
	}
	if err := tmp.Sync(); err != nil {
		return h, nil, err
	}
	if err := tmp.Close(); err != nil {
		return h, nil, err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return h, nil, err
	}
	done = true
	return h, sum, nil
}

// readBackup checks a backup: magic, header, framing within the bounds,
// entry count, checksum.
func readBackup(r io.Reader) (backupHeader, []byte, error) {
	var h backupHeader
	sum := sha256.New()
	br := bufio.NewReader(r)
	tr := io.TeeReader(br, sum)
	var magic [8]byte
	if _, err := io.ReadFull(tr, magic[:]); err != nil || magic != backupMagic {
		return h, nil, fmt.Errorf("%w: no backup magic", errBadBackup)
	}
	record := func(limit int) ([]byte, error) {
		var l [4]byte
		if _, err := io.ReadFull(tr, l[:]); err != nil {
			return nil, fmt.Errorf("%w: truncated", errBadBackup)
		}
		n := binary.BigEndian.Uint32(l[:])
		if n > uint32(limit) {
			return nil, fmt.Errorf("%w: a record of %d bytes, limit %d", errBadBackup, n, limit)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(tr, b); err != nil {
			return nil, fmt.Errorf("%w: truncated", errBadBackup)
		}
		return b, nil
	}
	hb, err := record(backupMaxHeader)
	if err != nil {
		return h, nil, err
	}
	if len(hb) == 0 || genericDec.Unmarshal(hb, &h) != nil || (h.Format != backupFormat && h.Format != backupFormatV1) {
		return h, nil, fmt.Errorf("%w: unreadable header", errBadBackup)
	}
	n := 0
	for {
		b, err := record(backupMaxRecord)
		if err != nil {
			return h, nil, err
		}
		if len(b) == 0 {
			break
		}
		n++
	}
	want := sum.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil {
		return h, nil, fmt.Errorf("%w: truncated checksum", errBadBackup)
	}
	if !bytes.Equal(got, want) {
		return h, nil, fmt.Errorf("%w: checksum mismatch", errBadBackup)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return h, nil, fmt.Errorf("%w: bytes after the checksum", errBadBackup)
	}
	if n != h.Entries {
		return h, nil, fmt.Errorf("%w: %d entries, the header says %d", errBadBackup, n, h.Entries)
	}
	return h, want, nil
}
