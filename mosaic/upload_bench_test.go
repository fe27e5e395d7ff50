package mosaic_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mosaic-watch/mosaic-watch/mosaic"
	"github.com/mosaic-watch/mosaic-watch/mosaic/mosaictest"
)

// writeBenchFile writes size bytes of random-looking content (one random 1 MiB block repeated).
func writeBenchFile(b *testing.B, size int64) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.mp4")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range block {
		block[i] = byte(rng.Uint32())
	}
	for written := int64(0); written < size; written += int64(len(block)) {
		if _, err := f.Write(block[:min(int64(len(block)), size-written)]); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

func benchFake(b *testing.B) (*mosaictest.Server, *mosaic.Client) {
	b.Helper()
	fake, err := mosaictest.NewServer(mosaictest.Options{BasePath: basePath, MaxFileSize: 64 << 30})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = fake.Close() })
	c, err := mosaic.New(mosaic.Options{BaseURL: fake.URL(), APIKey: mosaictest.DefaultAPIKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return fake, c
}

func uploadFile(b *testing.B, c *mosaic.Client, tg *mosaic.UploadTarget, path string, size int64) {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := c.Upload(context.Background(), tg, mosaic.UploadFile{Name: "bench.mp4", ContentType: "video/mp4", Size: size, Body: f}, nil); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUpload compares the client's multipart upload of a 256 MiB file with curl -F sending the
// same form to the same fake storage URL.
func BenchmarkUpload(b *testing.B) {
	const size = 256 << 20
	path := writeBenchFile(b, size)
	fake, c := benchFake(b)
	ctx := context.Background()
	curl, curlErr := exec.LookPath("curl")

	var clientDur, curlDur time.Duration
	rounds := 0
	clientRound := func() {
		tg, err := c.GetUploadURL(ctx, mosaic.UploadRequest{})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		uploadFile(b, c, tg, path, size)
		clientDur += time.Since(start)
	}
	curlRound := func() {
		tg, err := c.GetUploadURL(ctx, mosaic.UploadRequest{})
		if err != nil {
			b.Fatal(err)
		}
		// The same form: every policy field verbatim (--form-string: no @/< interpretation), file last.
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:"}
		for _, f := range tg.Fields {
			args = append(args, "--form-string", f.Name+"="+f.Value)
		}
		args = append(args, "-F", "file=@"+path+";type=video/mp4", tg.URL)
		start := time.Now()
		out, err := exec.Command(curl, args...).CombinedOutput()
		curlDur += time.Since(start)
		if err != nil || !strings.HasPrefix(string(out), "20") {
			b.Fatalf("curl: %v: %s", err, mosaic.RedactURL(string(out)))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// client, curl, curl, client: both see the same warm/cold conditions on this shared machine.
		clientRound()
		if curlErr == nil {
			curlRound()
			curlRound()
		}
		clientRound()
		rounds += 2
	}
	b.StopTimer()
	mb := float64(size) * float64(rounds) / 1e6
	b.ReportMetric(mb/clientDur.Seconds(), "client-MB/s")
	if curlErr == nil {
		b.ReportMetric(mb/curlDur.Seconds(), "curl-MB/s")
		b.ReportMetric(curlDur.Seconds()/clientDur.Seconds(), "ratio")
	} else {
		b.Logf("curl not found; client only")
	}
	want := int64(rounds) * size
	if curlErr == nil {
		want *= 2
	}
	if got := fake.Stats().BytesUploaded; got != want {
		b.Errorf("fake received %d bytes, want %d", got, want)
	}
}

// BenchmarkUploadHeap1GiB uploads a 1 GiB sparse file and reports the peak Go heap seen while it
// streams (sampled every 2 ms). Client and fake share the process, so the figure covers both.
func BenchmarkUploadHeap1GiB(b *testing.B) {
	const size = 1 << 30
	path := filepath.Join(b.TempDir(), "sparse.mp4")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	fake, c := benchFake(b)
	ctx := context.Background()

	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	readHeap := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64()
	}
	runtime.GC()
	baseline := readHeap()
	var peak atomic.Uint64
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tg, err := c.GetUploadURL(ctx, mosaic.UploadRequest{})
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for {
				if h := readHeap(); h > peak.Load() {
					peak.Store(h)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		uploadFile(b, c, tg, path, size)
		close(stop)
		wg.Wait()
	}
	b.StopTimer()
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak.Load()-min(baseline, peak.Load()))/(1<<20), "peak-over-baseline-MiB")
	if got := fake.Stats().BytesUploaded; got != int64(b.N)*size {
		b.Errorf("fake received %d bytes", got)
	}
}
