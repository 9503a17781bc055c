# hello_world.py: a Python component with the official SDK (pip install awsiotsdk).
from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import JsonMessage, PublishMessage

ipc = GreengrassCoreIPCClientV2()  # reads the socket path and SVCUID from the environment
message = ipc.get_configuration(key_path=["Message"]).value["Message"]
ipc.publish_to_topic(topic="hello",
                     publish_message=PublishMessage(json_message=JsonMessage(message={"hello": message})))
print(f"published hello {message}")
ipc.close()
