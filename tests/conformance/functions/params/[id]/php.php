<?php
function handler($event)
{
    return ['id' => $event['params']['id']];
}
