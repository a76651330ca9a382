package execconfig

import (
	"io/fs"
	"syscall"
)

// statID is a file's identity from its stat: device, inode, size, mtime
// and ctime (`agent render` on a Mac).
func statID(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{fileKey: fileKey{dev: uint64(uint32(st.Dev)), ino: st.Ino}, size: st.Size, mtime: st.Mtimespec.Nano(), ctime: st.Ctimespec.Nano()}, true
}
