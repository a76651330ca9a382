"""Stand-in for Mage's K8sPipelineExecutor (its signatures)."""
from mage_ai.data_preparation.executors.pipeline_executor import PipelineExecutor


class K8sPipelineExecutor(PipelineExecutor):
    def __init__(self, pipeline, execution_partition=None):
        super().__init__(pipeline, execution_partition=execution_partition)

    def cancel(self, pipeline_run_id=None):
        raise RuntimeError("Mage's own executor ran: magekube did not take over")

    def execute(self, pipeline_run_id=None, global_vars=None, **kwargs):
        raise RuntimeError("Mage's own executor ran: magekube did not take over")
