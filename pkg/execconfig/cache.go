package execconfig

import (
	"io/fs"
	"sync"
	"time"
)

// Cache keeps the metadata.yaml files Levels reads, parsed and trimmed to
// their executor config, for as long as each file is unchanged. Mage runs
// a pipeline's blocks as separate runs, and each run's config is resolved
// from the same pipeline file: a 20-block pipeline's metadata.yaml takes
// about 0.5 ms and 390 KB of garbage to parse (BenchmarkLevels), several
// times everything else the agent does to take a request.
//
// A file is unchanged while its identity is: device, inode, size, mtime
// and ctime, from fs.Stat. SafeDirFS opens the file to stat it, so on NFS
// the open's attribute check sees another client's write, as a read
// would. A file whose ctime is less than a second old is not kept: two
// writes within one tick of the file system's clock can leave the same
// identity, and any later write moves ctime past the kept one's.
//
// A Cache is safe for concurrent use; a nil *Cache reads every file each
// time.
type Cache struct {
	mu     sync.Mutex
	files  map[fileKey]*cachedFile
	bytes  int64  // the kept files' costs
	clock  uint64 // counts uses, for least recently used eviction
	settle time.Duration
	now    func() time.Time
}

// Bounds of a Cache: the kept files' sizes (each counted as at least
// cacheMinCost), and the largest file kept. Kept documents are trimmed to
// their executor config, which is most of their size only in a project
// that writes env lists or templates of hundreds of KiB.
const (
	cacheMaxBytes = 1 << 20
	cacheMaxFile  = 256 << 10
	cacheMinCost  = 4 << 10
	cacheSettle   = time.Second
)

type fileKey struct{ dev, ino uint64 }

// fileID is what tells a file's content changed.
type fileID struct {
	fileKey
	size         int64
	mtime, ctime int64 // ns since the epoch
}

type cachedFile struct {
	id   fileID
	doc  map[string]any
	cost int64
	used uint64
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	return &Cache{files: map[fileKey]*cachedFile{}, settle: cacheSettle, now: time.Now}
}

// read returns the metadata file name from fsys, trimmed (see trim): the
// kept copy while the file is unchanged, else read and parsed. A missing
// file is nil; an error names the file.
func (c *Cache) read(fsys fs.FS, name string) (map[string]any, error) {
	if c == nil {
		return readMetadata(fsys, name)
	}
	before, ok := identify(fsys, name)
	if !ok {
		return readMetadata(fsys, name)
	}
	if doc, hit := c.get(before); hit {
		return doc, nil
	}
	doc, err := readMetadata(fsys, name)
	if err != nil {
		return nil, err
	}
	// Kept only if the file read is the one identified: unchanged from
	// before the read to after it, and settled.
	if after, ok := identify(fsys, name); ok && after == before && c.now().Sub(time.Unix(0, after.ctime)) >= c.settle {
		c.put(after, doc)
	}
	return doc, nil
}

// identify stats name; false when it cannot be identified (missing, not a
// regular file, or a file system without inodes).
func identify(fsys fs.FS, name string) (fileID, bool) {
	fi, err := fs.Stat(fsys, name)
	if err != nil || !fi.Mode().IsRegular() {
		return fileID{}, false
	}
	return statID(fi)
}

func (c *Cache) get(id fileID) (map[string]any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.files[id.fileKey]
	if f == nil || f.id != id {
		return nil, false
	}
	c.clock++
	f.used = c.clock
	return f.doc, true
}

// put keeps doc as the content of the file id, evicting the least
// recently used files past the bounds.
func (c *Cache) put(id fileID, doc map[string]any) {
	if id.size > cacheMaxFile {
		return
	}
	cost := max(id.size, cacheMinCost)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drop(id.fileKey)
	for c.bytes+cost > cacheMaxBytes {
		var oldest *cachedFile
		for _, f := range c.files {
			if oldest == nil || f.used < oldest.used {
				oldest = f
			}
		}
		c.drop(oldest.id.fileKey)
	}
	c.clock++
	c.files[id.fileKey] = &cachedFile{id: id, doc: doc, cost: cost, used: c.clock}
	c.bytes += cost
}

// drop forgets the file k. The caller holds c.mu.
func (c *Cache) drop(k fileKey) {
	if f := c.files[k]; f != nil {
		c.bytes -= f.cost
		delete(c.files, k)
	}
}

// readMetadata reads a metadata.yaml trimmed to what Levels reads.
func readMetadata(fsys fs.FS, name string) (map[string]any, error) {
	doc, err := readYAML(fsys, name)
	return trim(doc), err
}

// trim keeps what Levels reads from a metadata.yaml: the two executor
// config sections, and each block's uuid and executor_config. The rest
// (a pipeline's blocks' names, types, edges, retry and status fields) is
// most of a Mage pipeline file and would only weigh on a Cache.
func trim(doc map[string]any) map[string]any {
	if doc == nil {
		return nil
	}
	out := map[string]any{}
	for _, k := range []string{projectKey, pipelineKey} {
		if v, ok := doc[k]; ok {
			out[k] = v
		}
	}
	if blocks, ok := doc["blocks"].([]any); ok {
		kept := make([]any, 0, len(blocks))
		for _, b := range blocks {
			if block, ok := b.(map[string]any); ok {
				kept = append(kept, map[string]any{"uuid": block["uuid"], pipelineKey: block[pipelineKey]})
			}
		}
		out["blocks"] = kept
	}
	return out
}
