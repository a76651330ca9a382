package protocol

// openSafe: Windows opens have no O_NOFOLLOW; the files read there are a
// user's own (`agent render` on a laptop), never the shared volume.
const openSafe = 0

func isLinkError(error) bool { return false }
