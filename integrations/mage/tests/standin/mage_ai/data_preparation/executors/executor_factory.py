"""Stand-in for Mage's ExecutorFactory: it imports the k8s executors
lazily, inside the function, as Mage's does."""


class ExecutorFactory:
    @classmethod
    def get_block_executor(cls, pipeline, block_uuid, block_run_id=None, execution_partition=None, executor_type=None):
        from mage_ai.data_preparation.executors.k8s_block_executor import K8sBlockExecutor

        return K8sBlockExecutor(pipeline=pipeline, block_run_id=block_run_id, block_uuid=block_uuid,
                                execution_partition=execution_partition)

    @classmethod
    def get_pipeline_executor(cls, pipeline, execution_partition=None, executor_type=None):
        from mage_ai.data_preparation.executors.k8s_pipeline_executor import K8sPipelineExecutor

        return K8sPipelineExecutor(pipeline, execution_partition=execution_partition)
