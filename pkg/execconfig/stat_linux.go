package execconfig

import (
	"io/fs"
	"syscall"
)

// statID is a file's identity from its stat: device, inode, size, mtime
// and ctime.
func statID(fi fs.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{fileKey: fileKey{dev: st.Dev, ino: st.Ino}, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, true
}
