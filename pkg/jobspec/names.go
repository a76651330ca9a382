package jobspec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/magekube/magekube/pkg/protocol"
)

// MaxNameLength is the longest Job name that still fits the job-name
// label Kubernetes puts on the Job's pods.
const MaxNameLength = 63

// DefaultClusterUUID and DefaultJobNamePrefix are Mage's defaults.
const (
	DefaultClusterUUID   = "mage"
	DefaultJobNamePrefix = "data-prep"
)

// JobName is Mage's Job name for a run,
// <MAGE_CLUSTER_UUID>-<job_name_prefix>-block-<block_run_id> (or
// -pipeline-<pipeline_run_id>), with -a<N> for a later attempt of the
// same Mage run, made a DNS-1123 label. The same inputs always give the
// same name, so a retried request adopts its Job.
func JobName(clusterUUID, prefix string, req *protocol.Request) string {
	if clusterUUID == "" {
		clusterUUID = DefaultClusterUUID
	}
	if prefix == "" {
		prefix = DefaultJobNamePrefix
	}
	name := fmt.Sprintf("%s-%s-block-%d", clusterUUID, prefix, req.BlockRunID)
	if req.Kind == protocol.KindPipeline {
		name = fmt.Sprintf("%s-%s-pipeline-%d", clusterUUID, prefix, req.PipelineRunID)
	}
	if req.Attempt > 1 {
		name = fmt.Sprintf("%s-a%d", name, req.Attempt)
	}
	return DNSLabel(name)
}

// DNSLabel turns s into a valid DNS-1123 label of at most 63 characters.
// Lower case letters, digits and single dashes pass unchanged; anything
// else becomes a dash. When that changed s, or s is too long, a short hash
// of the original is appended, so distinct inputs keep distinct names.
func DNSLabel(s string) string {
	clean := sanitize(s)
	if clean != "" && clean == s && len(clean) <= MaxNameLength {
		return clean
	}
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:8]
	room := MaxNameLength - len(suffix) - 1
	if len(clean) > room {
		clean = strings.TrimRight(clean[:room], "-")
	}
	if clean == "" {
		return "x-" + suffix
	}
	return clean + "-" + suffix
}

func sanitize(s string) string {
	var b strings.Builder
	dash := true // drops leading dashes
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r - 'A' + 'a')
			dash = false
		default:
			if !dash {
				b.WriteByte('-')
				dash = true
			}
		}
	}
	return strings.TrimRight(b.String(), "-")
}
