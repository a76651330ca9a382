package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Every Job pod can write the shared volume, so a result.json alone
// proves nothing. The runner seals its result with a key only its own pod
// holds: the UID of its Job, which the pod reads through the downward API
// (the Job controller's label on it) and which the agent knows from the
// API server. No file on the volume holds it, so another pod cannot seal
// a result for this run.

// RunKeyLabel is the pod label holding its Job's UID, the run's key.
const RunKeyLabel = "batch.kubernetes.io/controller-uid"

// SealResult is the seal of r for run id under key.
func SealResult(key, id string, r Result) string {
	mac := hmac.New(sha256.New, []byte(key))
	fmt.Fprintf(mac, "magekube/v1 result\n%s\n%d\n%s\n%d\n%s\n", id, r.ExitCode, r.Reason, r.Attempt, r.Pod)
	return hex.EncodeToString(mac.Sum(nil))
}

// ResultSealed reports whether r carries the seal of run id under key.
func ResultSealed(key, id string, r Result) bool {
	if key == "" || r.Seal == "" {
		return false
	}
	return hmac.Equal([]byte(r.Seal), []byte(SealResult(key, id, r)))
}
