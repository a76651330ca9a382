"""Stand-in for Mage's K8sBlockExecutor: its signatures; running it
without magekube fails, as creating a Job from here must not happen."""
from mage_ai.data_preparation.executors.block_executor import BlockExecutor


class K8sBlockExecutor(BlockExecutor):
    RETRYABLE = False

    def __init__(self, pipeline, block_uuid, execution_partition=None, **kwargs):
        super().__init__(pipeline, block_uuid, execution_partition=execution_partition)
        self.executor_config_dict = {}

    def _execute(self, block_run_id=None, global_vars=None, **kwargs):
        raise RuntimeError("Mage's own executor ran: magekube did not take over")
