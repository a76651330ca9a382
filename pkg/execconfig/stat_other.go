//go:build !linux && !darwin

package execconfig

import "io/fs"

// statID cannot identify a file here (no inode in the stat): every file
// is parsed for each use, which `agent render` does once anyway.
func statID(fs.FileInfo) (fileID, bool) { return fileID{}, false }
