package jobspec

import (
	"strconv"

	"github.com/magekube/magekube/pkg/protocol"
)

// MageRunScript is the entrypoint Mage's own executors put in front of
// `mage run` in the official image.
const MageRunScript = "/app/run_app.sh"

// MageCommand is the command Mage's Kubernetes executors run in the Job
// for this request (block_executor.py / pipeline_executor.py
// _run_commands), argument for argument. Mage passes no variables: the
// pod reloads them from Mage's database through the run ids.
func MageCommand(req *protocol.Request) []string {
	cmd := []string{MageRunScript, "mage", "run", req.ProjectDir, req.PipelineUUID}
	if req.Kind == protocol.KindPipeline {
		cmd = append(cmd, "--executor-type", "local_python")
		if req.ExecutionPartition != "" {
			cmd = append(cmd, "--execution-partition", req.ExecutionPartition)
		}
		return append(cmd, "--pipeline-run-id", strconv.FormatInt(req.PipelineRunID, 10))
	}
	cmd = append(cmd, "--block-uuid", req.BlockUUID, "--executor-type", "local_python")
	if req.ExecutionPartition != "" {
		cmd = append(cmd, "--execution-partition", req.ExecutionPartition)
	}
	cmd = append(cmd, "--block-run-id", strconv.FormatInt(req.BlockRunID, 10))
	if req.PipelineRunID != 0 {
		cmd = append(cmd, "--pipeline-run-id", strconv.FormatInt(req.PipelineRunID, 10))
	}
	return cmd
}
