"""Stand-in for mage_ai's PipelineExecutor (signatures of Mage's own)."""


class PipelineExecutor:
    def __init__(self, pipeline, execution_partition=None):
        self.pipeline = pipeline
        self.execution_partition = execution_partition
        self.logger = None

    def cancel(self, **kwargs):
        pass

    def execute(self, allow_blocks_to_fail=False, analyze_outputs=False, global_vars=None,
                pipeline_run_id=None, run_sensors=True, run_tests=True, update_status=False, **kwargs):
        raise NotImplementedError
