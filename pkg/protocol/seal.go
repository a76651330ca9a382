package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Every Job pod can write the shared volume, so a result.json alone
// proves nothing. The runner seals its result with a key only its own pod
// holds: the UID of its Job, which the pod reads through the downward API
// (the Job controller's label on it) and which the agent knows from the
// API server. No file on the volume holds it, so another pod cannot seal
// a result for this run.

// RunKeyLabel is the pod label holding its Job's UID, the run's key.
const RunKeyLabel = "batch.kubernetes.io/controller-uid"

// SealResult is the seal of r for run id under key. It covers every
// field of r but the seal itself, as r's JSON encoding.
func SealResult(key, id string, r Result) string {
	r.Seal = ""
	data, err := json.Marshal(r)
	if err != nil { // a Result always encodes
		return ""
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("magekube/v1 result\n" + id + "\n"))
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// ResultSealed reports whether r carries the seal of run id under key.
func ResultSealed(key, id string, r Result) bool {
	if key == "" || r.Seal == "" {
		return false
	}
	// r went through JSON once (the runner's file): its times carry no
	// monotonic reading and encode as the runner's did.
	return hmac.Equal([]byte(r.Seal), []byte(SealResult(key, id, r)))
}
