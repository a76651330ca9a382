"""Stand-in for mage_ai's BlockExecutor: the signatures of Mage's own
(mage-ai/mage-ai, mage_ai/data_preparation/executors/block_executor.py),
the behaviour reduced to what the k8s executor relies on."""


class BlockExecutor:
    RETRYABLE = True

    def __init__(self, pipeline, block_uuid, execution_partition=None, block_run_id=None):
        self.pipeline = pipeline
        self.block_uuid = block_uuid
        self.execution_partition = execution_partition
        self.block_run_id = block_run_id
        self.logger = None

    def execute(self, analyze_outputs=False, block_run_id=None, block_run_outputs_cache=None,
                cache_block_output_in_memory=False, callback_url=None, global_vars=None,
                input_from_output=None, on_complete=None, on_failure=None, on_start=None,
                pipeline_run_id=None, retry_config=None, runtime_arguments=None,
                template_runtime_configuration=None, update_status=False, verify_output=True,
                block_run_dicts=None, skip_logging=False, **kwargs):
        try:
            result = self._execute(
                analyze_outputs=analyze_outputs, block_run_id=block_run_id,
                block_run_outputs_cache=block_run_outputs_cache,
                cache_block_output_in_memory=cache_block_output_in_memory, callback_url=callback_url,
                global_vars=global_vars, update_status=update_status, input_from_output=input_from_output,
                logging_tags=None, verify_output=verify_output, runtime_arguments=runtime_arguments,
                pipeline_run_id=pipeline_run_id, template_runtime_configuration=template_runtime_configuration,
                block_run_dicts=block_run_dicts, **kwargs)
        except Exception as error:
            if on_failure is not None:
                on_failure(self.block_uuid, error=error)
            raise
        if on_complete is not None:
            on_complete(self.block_uuid)
        return result

    def _execute(self, analyze_outputs=False, block_run_id=None, **kwargs):
        raise NotImplementedError
